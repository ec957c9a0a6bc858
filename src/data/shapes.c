/* shapes.c: the generated image law 'shapes' (image.h, docs/data.md): size x size gray images
 * holding one disc, square or horizontal/vertical bar of a uniform intensity on black, every
 * parameter an integer in pixel units drawn from the caller's rng in a fixed order; and the
 * classification rule that recovers class, mass and centre from an image, and the test of a
 * clean image (one shape, nothing else), so that a test can check a model's samples against the
 * law.
 *
 * A test set for image models that trains in seconds: three classes separated by geometry a
 * rule can read (aspect ratio and fill of the bounding box), known parameters for statistics.
 * Not anti-aliased and without noise on purpose: every image has exactly two values, 0 and a.
 */
#include "cm/image.h"

#include <math.h>
#include <string.h>

/* Intensity a = SHAPES_INTENSITY_LOW + SHAPES_INTENSITY_SPAN u: bright enough that the support
 * (pixels >= half the peak) is exactly the shape, never white enough to saturate. */
#define SHAPES_INTENSITY_LOW 0.5
#define SHAPES_INTENSITY_SPAN 0.5
/* The rule's thresholds: a bar's bounding box is at least 8/3 times longer than thick, a disc's
 * and a square's exactly square; a square fills its box, a digital disc fills less than pi/4
 * of it (docs/data.md). Midway values leave room for blurred model samples. */
#define SHAPES_BAR_ASPECT 2.0
#define SHAPES_SQUARE_FILL 0.9

static const char *const shape_names[CM_SHAPE_COUNT] = {"disc", "square", "bar"};

const char *cm_shape_class_name(cm_shape_class shape) {
    if ((int)shape < 0 || shape >= CM_SHAPE_COUNT) return "none";
    return shape_names[shape];
}

/* Uniform integer in [low, low + span]. */
static size_t draw_between(cm_rng *rng, size_t low, size_t span) {
    return low + (size_t)cm_rng_below(rng, (uint64_t)span + 1);
}

/* Draws, in this order: class k = B(3), u (intensity), the class's size parameters, then the
 * top row and the left column of the bounding box, uniform over the positions that fit. */
void cm_shapes_draw(double *out, cm_shape_params *params, size_t size, cm_rng *rng) {
    size_t S = size;
    cm_shape_params p = {0};
    p.shape = (cm_shape_class)cm_rng_below(rng, CM_SHAPE_COUNT);
    p.intensity = SHAPES_INTENSITY_LOW + SHAPES_INTENSITY_SPAN * cm_rng_uniform(rng);
    if (p.shape == CM_SHAPE_DISC) {
        p.radius = draw_between(rng, S / 8, S / 8);            /* r in [S/8, S/4] */
        p.rows = p.columns = 2 * p.radius + 1;
    } else if (p.shape == CM_SHAPE_SQUARE) {
        p.rows = p.columns = draw_between(rng, S / 4, S / 4);  /* side in [S/4, S/2] */
    } else {
        p.vertical = (int)cm_rng_below(rng, 2);
        size_t thickness = draw_between(rng, S / 8, S / 16);   /* [S/8, S/8 + S/16] */
        size_t length = draw_between(rng, S / 2, S - 2 - S / 2); /* [S/2, S - 2] */
        p.rows = p.vertical ? length : thickness;
        p.columns = p.vertical ? thickness : length;
    }
    p.top = (size_t)cm_rng_below(rng, S - p.rows + 1);
    p.left = (size_t)cm_rng_below(rng, S - p.columns + 1);
    memset(out, 0, S * S * sizeof(double));
    long r = (long)p.radius, cy = (long)(p.top + p.radius), cx = (long)(p.left + p.radius);
    for (size_t y = p.top; y < p.top + p.rows; y++) {
        for (size_t x = p.left; x < p.left + p.columns; x++) {
            long dy = (long)y - cy, dx = (long)x - cx;
            if (p.shape != CM_SHAPE_DISC || dy * dy + dx * dx <= r * r)
                out[y * S + x] = p.intensity;
        }
    }
    if (params) *params = p;
}

/* Support: pixels >= peak / 2. Class: blank when the peak is not positive; a bar when the
 * bounding box's long side is at least SHAPES_BAR_ASPECT times its short side; else a square
 * when the support fills at least SHAPES_SQUARE_FILL of the box, else a disc. */
void cm_shapes_measure(cm_shape_measure *out, const double *image, size_t size) {
    cm_shape_measure m = {.shape = CM_SHAPE_COUNT, .peak = 0.0};
    size_t n = size * size, bottom = 0, right = 0;
    for (size_t i = 0; i < n; i++)
        if (image[i] > m.peak) m.peak = image[i];
    if (!(m.peak > 0.0)) {
        *out = m;
        return;
    }
    double sum_y = 0.0, sum_x = 0.0;
    m.top = m.left = size;
    for (size_t y = 0; y < size; y++) {
        for (size_t x = 0; x < size; x++) {
            if (!(image[y * size + x] >= 0.5 * m.peak)) continue;
            m.mass++;
            sum_y += (double)y;
            sum_x += (double)x;
            if (y < m.top) m.top = y;
            if (x < m.left) m.left = x;
            if (y > bottom) bottom = y;
            if (x > right) right = x;
        }
    }
    m.rows = bottom - m.top + 1;
    m.columns = right - m.left + 1;
    m.fill = (double)m.mass / ((double)m.rows * (double)m.columns);
    m.centre_y = sum_y / (double)m.mass;
    m.centre_x = sum_x / (double)m.mass;
    double longer = (double)(m.rows > m.columns ? m.rows : m.columns);
    double shorter = (double)(m.rows > m.columns ? m.columns : m.rows);
    m.shape = longer >= SHAPES_BAR_ASPECT * shorter ? CM_SHAPE_BAR
              : m.fill >= SHAPES_SQUARE_FILL       ? CM_SHAPE_SQUARE
                                                   : CM_SHAPE_DISC;
    *out = m;
}

#define SHAPES_OFF_SUPPORT SIZE_MAX

static size_t region_root(size_t *parent, size_t i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]]; /* path halving */
        i = parent[i];
    }
    return i;
}

/* 1 when a pixel of the support is among the 8 neighbours of (y, x). */
static int touches_support(const size_t *parent, size_t size, size_t y, size_t x) {
    for (size_t ny = y ? y - 1 : 0; ny <= y + 1 && ny < size; ny++)
        for (size_t nx = x ? x - 1 : 0; nx <= x + 1 && nx < size; nx++)
            if (parent[ny * size + nx] != SHAPES_OFF_SUPPORT) return 1;
    return 0;
}

/* Regions: union-find over the support in raster order, each pixel joined to its neighbours
 * already visited (left, and the three above), counting the merges. */
int cm_shapes_clean(const double *image, size_t size, size_t *scratch) {
    static const int dy[4] = {0, -1, -1, -1}, dx[4] = {-1, -1, 0, 1};
    size_t n = size * size, regions = 0, *parent = scratch;
    double peak = 0.0;
    for (size_t i = 0; i < n; i++)
        if (image[i] > peak) peak = image[i];
    if (!(peak > 0.0)) return 0;
    for (size_t y = 0; y < size; y++)
        for (size_t x = 0; x < size; x++) {
            size_t i = y * size + x;
            if (!(image[i] >= 0.5 * peak)) {
                parent[i] = SHAPES_OFF_SUPPORT;
                continue;
            }
            parent[i] = i, regions++;
            for (int k = 0; k < 4; k++) {
                long ny = (long)y + dy[k], nx = (long)x + dx[k];
                if (ny < 0 || nx < 0 || nx >= (long)size) continue;
                size_t j = (size_t)ny * size + (size_t)nx;
                if (parent[j] == SHAPES_OFF_SUPPORT) continue;
                size_t a = region_root(parent, i), b = region_root(parent, j);
                if (a != b) parent[a] = b, regions--;
            }
        }
    if (regions != 1) return 0;
    for (size_t y = 0; y < size; y++)
        for (size_t x = 0; x < size; x++) {
            size_t i = y * size + x;
            if (parent[i] != SHAPES_OFF_SUPPORT || touches_support(parent, size, y, x)) continue;
            if (!(image[i] < CM_SHAPES_CLEAN_BACKGROUND * peak)) return 0;
        }
    return 1;
}
