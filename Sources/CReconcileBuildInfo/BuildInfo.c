#include "CReconcileBuildInfo.h"

#ifndef RECONCILE_COMMIT
#define RECONCILE_COMMIT "unknown"
#endif

const char *reconcile_build_commit(void) { return RECONCILE_COMMIT; }
