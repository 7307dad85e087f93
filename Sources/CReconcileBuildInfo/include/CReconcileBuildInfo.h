#ifndef CRECONCILE_BUILD_INFO_H
#define CRECONCILE_BUILD_INFO_H
/// The git commit the binary was built from ("unknown" outside a git checkout).
const char *reconcile_build_commit(void);
#endif
