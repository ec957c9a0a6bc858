/* test_minimise.c: the grid + golden-section minimiser (minimise.h): the minimiser of a parabola
 * to the bracket the golden ratio leaves after the stated evaluations, the deeper of two basins
 * where a section over the whole interval settles in the shallow one, the exact number of
 * evaluations, a failing function's status passed back, and bad intervals refused. */
#include "cm/minimise.h"

#include <math.h>

#include "test.h"

typedef struct {
    size_t calls, fail_at; /* fail_at: the call that fails (0: none) */
    int kind;              /* 0: parabola, 1: two basins, 2: nothing finite */
} counted;

/* Two Gaussian wells: a deep narrow one at 0.7, a shallow broad one at -0.5. */
static double two_basins(double x) {
    double deep = (x - 0.7) / 0.3, shallow = (x + 0.5) / 0.6;
    return -exp(-deep * deep) - 0.5 * exp(-shallow * shallow);
}

static cm_status counted_f(double *out, void *context, double x) {
    counted *c = context;
    c->calls++;
    if (c->fail_at && c->calls == c->fail_at) return cm_error_set(CM_ERR_INVALID, "call %zu", c->calls);
    *out = c->kind == 0 ? (x - 0.3) * (x - 0.3) : c->kind == 1 ? two_basins(x) : HUGE_VAL;
    return CM_OK;
}

static void test_parabola_to_golden_bracket(void) {
    const double golden = 0.5 * (sqrt(5.0) - 1.0);
    for (size_t evaluations = 4; evaluations <= 40; evaluations += 12) {
        counted c = {0, 0, 0};
        double x, value;
        CM_CHECK_OK(cm_minimise_grid_golden(&x, &value, counted_f, &c, -1.0, 2.0, 5, evaluations));
        /* grid -1, -0.25, 0.5, 1.25, 2: the bracket [-0.25, 1.25] around the best point 0.5,
         * shrunk by the golden ratio per evaluation after the first: the best point lies in
         * the last bracket, as does 0.3 */
        double bracket = 1.5 * pow(golden, (double)(evaluations - 1));
        CM_CHECK_CLOSE(x, 0.3, bracket, "argmin");
        CM_CHECK_CLOSE(value, (x - 0.3) * (x - 0.3), 0.0, "value at argmin");
        CM_CHECK(c.calls == 5 + evaluations, "%zu calls, expected %zu", c.calls, 5 + evaluations);
    }
}

static void test_grid_finds_deeper_basin(void) {
    counted c = {0, 0, 1};
    double x, value;
    CM_CHECK_OK(cm_minimise_grid_golden(&x, &value, counted_f, &c, -1.0, 1.0, 5, 30));
    CM_CHECK(fabs(x - 0.7) < 0.02 && value < -0.99, "x %g value %g: not the deep basin", x, value);
    /* two grid points (the ends): the section over all of [-1, 1] goes to the shallow well */
    c = (counted){0, 0, 1};
    CM_CHECK_OK(cm_minimise_grid_golden(&x, &value, counted_f, &c, -1.0, 1.0, 2, 30));
    CM_CHECK(x < 0 && value > -0.6, "x %g value %g: expected the shallow basin", x, value);
}

static void test_one_point_and_nothing_finite(void) {
    counted c = {0, 0, 0};
    double x, value;
    CM_CHECK_OK(cm_minimise_grid_golden(&x, &value, counted_f, &c, 1.0, 3.0, 1, 10));
    CM_CHECK(c.calls == 1 && x == 2.0, "one grid point: %zu calls at %g", c.calls, x);
    c = (counted){0, 0, 2};
    CM_CHECK_OK(cm_minimise_grid_golden(&x, &value, counted_f, &c, 1.0, 3.0, 3, 6));
    CM_CHECK(x == 2.0 && value == HUGE_VAL, "nothing below HUGE_VAL: %g (%g)", x, value);
    c = (counted){0, 0, 0};
    CM_CHECK_OK(cm_minimise_grid_golden(&x, NULL, counted_f, &c, 0.5, 0.5, 3, 4));
    CM_CHECK(x == 0.5, "empty interval: %g", x);
}

static void test_errors(void) {
    counted c = {0, 3, 0};
    double x = -7;
    CM_CHECK(cm_minimise_grid_golden(&x, NULL, counted_f, &c, 0, 1, 5, 5) == CM_ERR_INVALID &&
                 c.calls == 3 && x == -7,
             "a failing call stops the search: %zu calls", c.calls);
    c = (counted){0, 7, 0}; /* inside the golden section */
    CM_CHECK(cm_minimise_grid_golden(&x, NULL, counted_f, &c, 0, 1, 5, 5) == CM_ERR_INVALID,
             "a failing call in the section");
    c = (counted){0, 0, 0};
    CM_CHECK(cm_minimise_grid_golden(&x, NULL, counted_f, &c, 1, 0, 5, 5) == CM_ERR_INVALID, "lo > hi");
    CM_CHECK(cm_minimise_grid_golden(&x, NULL, counted_f, &c, NAN, 1, 5, 5) == CM_ERR_INVALID, "NaN");
    CM_CHECK(cm_minimise_grid_golden(&x, NULL, counted_f, &c, 0, INFINITY, 5, 5) == CM_ERR_INVALID,
             "infinite end");
    CM_CHECK(cm_minimise_grid_golden(&x, NULL, counted_f, &c, 0, 1, 0, 5) == CM_ERR_INVALID, "grid 0");
    CM_CHECK(c.calls == 0, "refused before any call: %zu", c.calls);
}

const cm_test_case cm_tests_minimise[] = {
    {"parabola_to_golden_bracket", test_parabola_to_golden_bracket},
    {"grid_finds_deeper_basin", test_grid_finds_deeper_basin},
    {"one_point_and_nothing_finite", test_one_point_and_nothing_finite},
    {"errors", test_errors},
    {NULL, NULL},
};
