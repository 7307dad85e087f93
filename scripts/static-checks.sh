#!/usr/bin/env bash
# Static checks that run here (the hosted workflow adds CodeQL): the project's own rules over
# Sources/. Each rule prints every offending line as file:line: text, and the run fails if any does.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
indent() { while IFS= read -r line; do printf '    %s\n' "$line"; done <<<"$1"; }
# Library code only: the bench harness (Sources/reconcile-bench) may start processes and print.
LIBRARIES=(Sources/reconcile Sources/ReconcileCLI Sources/ReconcileCore Sources/ReconcileDocker Sources/ReconcileSystem)

# rule NAME WHY PATTERN [PATHS...]: fails on any match of the Perl regex outside // comments.
rule() {
    local name=$1 why=$2 pattern=$3
    shift 3
    local hits
    hits=$(grep -rnP --include='*.swift' "$pattern" "$@" | grep -vP '^[^:]+:\d+:\s*//' || true)
    if [ -n "$hits" ]; then
        echo "static: FAIL $name: $why"
        indent "$hits"
        failed=1
    else
        echo "static: ok   $name"
    fi
}

rule "no try!" "a thrown error must become a clear message, not a crash" 'try!' Sources
rule "no as!" "a failed cast must be handled, not crash" '\bas!' Sources
rule "no force unwraps" "unwrap with guard/if let and say what is missing" '[\w\)\]]!(?![=])' Sources
rule "no fatalError or precondition" "reconcile reports and exits with a code; it never traps" \
    '\b(fatalError|preconditionFailure|precondition)\(' "${LIBRARIES[@]}"
rule "no processes or shells" "reconcile starts no processes, so no string can reach a shell" \
    '\b(Process\(\)|popen\(|system\(|posix_spawn|execv|"/bin/(ba)?sh")' "${LIBRARIES[@]}"
# Converting 1e300 (or NaN) to an integer traps. Floating-point values become integers only
# through Int(saturating:)/Int64(saturating:) or init(exactly:); Tests/ReconcileDockerTests/
# AbsurdNumberTests feeds every numeric field absurd values to catch what this pattern misses.
rule "no unchecked float to integer conversion" "1e300 would trap; use Int(saturating:) or init(exactly:)" \
    '\bU?Int(8|16|32|64)?\((?!saturating:|exactly:|clamping:|truncatingIfNeeded:|bitPattern:)(?=[^\n]*(\.rounded|\.seconds\b|Double\(|timeInterval|\* *1e|\.float\b))' \
    "${LIBRARIES[@]}"
# git (issue 9), docker credential helpers and ssh to a remote engine (issue 10) are run as
# processes: Subprocess, with arguments as an array, in these three files only.
runners='^Sources/ReconcileSystem/(GitRevisionStore|CredentialHelperProcess|SSHTunnel)\.swift$'
hits=$(grep -rln --include='*.swift' '^import Subprocess' "${LIBRARIES[@]}" | grep -vE "$runners" || true)
if [ -n "$hits" ]; then
    echo "static: FAIL processes in three places: Subprocess is imported outside GitRevisionStore.swift, CredentialHelperProcess.swift and SSHTunnel.swift"
    indent "$hits"
    failed=1
else
    echo "static: ok   processes in three places (Subprocess only in GitRevisionStore.swift, CredentialHelperProcess.swift, SSHTunnel.swift)"
fi
rule "no print or NSLog" "all output goes through CommandContext, so tests see it and JSON stays clean" \
    '(^|[^\w.])(print|debugPrint|NSLog)\(' "${LIBRARIES[@]}"

# Secret values live in DesiredEnvironment.secretValues. Only the code that turns them into the
# container's environment (ContainerCreation+Spec) or into fingerprints (RuntimeConfig) may read them;
# Differ (which declares them) and Planning (which fills them from SecretResolver) may name them.
allowed='Sources/ReconcileCore/(RuntimeConfig|ContainerCreation\+Spec|Differ)\.swift|Sources/ReconcileCLI/Planning\.swift'
hits=$(grep -rn --include='*.swift' 'secretValues' Sources | grep -vE "^($allowed):" || true)
if [ -n "$hits" ]; then
    echo "static: FAIL secrets stay out of output: secretValues read outside the allowed files"
    indent "$hits"
    failed=1
else
    echo "static: ok   secrets stay out of output (secretValues read in 4 files only)"
fi

# Files that write output or logs must not touch secret values at all.
hits=$(grep -rlE --include='*.swift' '\b(say|warn|report|write)\(' "${LIBRARIES[@]}" | xargs grep -ln 'secretValues' || true)
if [ -n "$hits" ]; then
    echo "static: FAIL secrets in output: these files both print and read secretValues:"
    indent "$hits"
    failed=1
else
    echo "static: ok   no file both prints and reads secret values"
fi

[ "$failed" -eq 0 ] || { echo "static: fix the lines above"; exit 1; }
echo "static: all rules pass"
