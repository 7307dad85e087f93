# shellcheck shell=bash
# Shared by the bench scripts (sourced): milliseconds now, and the median of numbers on stdin.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
