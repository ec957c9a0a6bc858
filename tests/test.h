/* test.h: the minimal test harness of cm (no dependency).
 *
 * A test is a function `static void test_name(void)` registered in a file's table; CM_CHECK
 * records a failure with file, line and a printf-style message and lets the test continue.
 * tests/main.c runs every table, prints one line per failed check and per test, and ends with
 * the plain line "N passed, N failed" (exit status 1 on any failure). Statistical tests print
 * their seed; CM_TEST_SEED in the environment replays a different one.
 */
#ifndef CM_TEST_H
#define CM_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "nn/mlp.h" /* CM_TEST_MLP (white-box) */

typedef struct {
    const char *name;
    void (*function)(void);
} cm_test_case;

extern int cm_test_failures_in_current; /* failed checks in the running test */

void cm_test_fail(const char *file, int line, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
/* The MLP settings of a training config (white-box: nn/mlp.h). */
#define CM_TEST_MLP(config) ((cm_mlp_options *)cm_network_options(&(config).network))

#endif
    ;

/* Seed for statistical tests: CM_TEST_SEED from the environment, else `default_seed`;
 * printed so a failure can be replayed. */
uint64_t cm_test_seed(uint64_t default_seed);

#define CM_CHECK(condition, ...)                                   \
    do {                                                           \
        if (!(condition)) cm_test_fail(__FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

/* |a - b| <= tol, with a message that shows both values. */
#define CM_CHECK_CLOSE(a, b, tol, what)                                                 \
    do {                                                                                \
        double cm_a_ = (double)(a), cm_b_ = (double)(b), cm_t_ = (double)(tol);         \
        if (!(fabs(cm_a_ - cm_b_) <= cm_t_))                                            \
            cm_test_fail(__FILE__, __LINE__, "%s: %.17g vs %.17g (|diff| %.3g > tol %.3g)", \
                         (what), cm_a_, cm_b_, fabs(cm_a_ - cm_b_), cm_t_);             \
    } while (0)

#define CM_CHECK_OK(expression)                                                       \
    do {                                                                              \
        cm_status cm_s_ = (expression);                                               \
        if (cm_s_ != CM_OK)                                                           \
            cm_test_fail(__FILE__, __LINE__, "%s returned %s: %s", #expression,       \
                         cm_status_name(cm_s_), cm_error_detail());                   \
    } while (0)

/* The MLP settings of a training config (white-box: nn/mlp.h). */
#define CM_TEST_MLP(config) ((cm_mlp_options *)cm_network_options(&(config).network))

#endif
