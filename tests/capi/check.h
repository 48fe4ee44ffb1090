/* The one assertion of the C API tests: prints ok/FAIL per check (with the library's last error
 * on failure) and counts failures; main() exits non-zero when any failed. */
#ifndef ANETRAIN_TEST_CHECK_H
#define ANETRAIN_TEST_CHECK_H
#include <stdio.h>

#include "anetrain.h"

extern int failures;
#define CHECK(cond, what)                                                \
  do {                                                                   \
    if (cond) {                                                          \
      printf("ok   %s\n", what);                                         \
    } else {                                                             \
      printf("FAIL %s (last error: %s)\n", what, anetrain_last_error()); \
      ++failures;                                                        \
    }                                                                    \
  } while (0)

/* MIL programs on named backends (test_capi_mil.c): REF is shared/reference/mil, ANETRAIN the
 * CLI (for `anetrain mil run` on the same program and input), WORK a scratch folder. */
void test_mil(const char* ref, const char* anetrain, const char* work, const char* tok_path);

/* Gradients and the parameter table (test_capi_grad.c) on the loaded stories260K; ids: at least
 * 17 token ids of real text. */
void test_grad(anetrain_model* model, const int32_t* ids, int64_t params_in_info);

#endif
