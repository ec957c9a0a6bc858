/* data.c: data sources (see data.h): the five 2-D toy sets, exact Gaussian (isotropic or with a
 * log-spaced diagonal spectrum) and isotropic Gaussian-mixture laws in any dimension opened from a
 * spec string, user files (CSV/NPY through cm_matrix_read, their columns chosen in columns.c),
 * and image sources (the generated 'shapes' law; Fashion-MNIST, PNG folders and NPY image arrays
 * through image.h, kept as bytes and converted per drawn row); plus the per-coordinate
 * standardising transform and the fixed pixel transform of image sources.
 *
 * The toy generators follow the sets common in the flow/diffusion literature (FFJORD's
 * 8gaussians and checkerboard, scikit-learn's make_moons and make_swiss_roll); their exact
 * formulas, constants and order of draws are in docs/data.md. Hand-written because each is a
 * few lines and must be driven by our counter-based rng (cm_data_sample's prefix rule). This
 * file does not know scores or denoisers of the laws: that is the gmm module's job.
 */
#include "cm/data.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cm/alloc.h"
#include "cm/image.h"
#include "cm/io.h"
#include "data/columns.h"

#define PI 3.14159265358979323846

/* Spec limits: far above any sensible use, low enough that a typo ("d=10000000") is caught
 * before allocating instead of failing deep inside a trainer. */
#define DATA_MAX_DIM ((uint64_t)100000)
#define DATA_MAX_COMPONENTS ((uint64_t)100000)
/* k * d means of a gmm: 10^7 doubles = 80 MB, the largest table we build from a spec. */
#define DATA_MAX_GMM_VALUES ((uint64_t)10000000)
/* Longest value accepted in a spec field ("mean=..."); 64 characters hold any double. */
#define SPEC_VALUE_MAX 64
/* Exponents of spectrum=logspace(A,B): |A|, |B| <= this keeps every variance a normal double
 * whose square root and reciprocal are finite. */
#define SPECTRUM_MAX_EXPONENT 100.0

/* Defaults of the spec grammar (our choice, documented in docs/data.md): N(0, I) for gauss:,
 * and a mixture whose modes sit 4 from the origin with std 0.5, i.e. about 8 standard
 * deviations from the origin: clearly multimodal, still of order-one scale. */
#define GAUSS_DEFAULT_MEAN 0.0
#define GAUSS_DEFAULT_STD 1.0
#define GMM_DEFAULT_SEP 4.0
#define GMM_DEFAULT_STD 0.5
#define GMM_DEFAULT_SEED 1
/* "FILE:columns=LIST" selects columns of a file source (columns.c). */
#define DATA_COLUMNS_SUFFIX ":columns="
/* shapes: 16 x 16 images (docs/data.md); seed 0 is the first stream of the law. */
#define SHAPES_DEFAULT_SIZE 16
#define SHAPES_DEFAULT_SEED 0
/* The fixed transform of image sources: x_model = (x - 0.5) / 0.5 = 2 x - 1 maps pixels in
 * [0, 1] to [-1, 1] (Fashion-MNIST's x / 127.5 - 1 for bytes x, as diffusion models use). */
#define IMAGE_TRANSFORM_SHIFT 0.5
#define IMAGE_TRANSFORM_SCALE 0.5
/* FNV-1a 64-bit, the content fingerprint of stored sources. */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* 2-D toy constants (docs/data.md gives the full formulas). */
#define G8_RADIUS 2.0       /* centres 2 (cos k pi/4, sin k pi/4) */
#define G8_STD 0.1          /* isotropic noise around each centre */
#define MOONS_NOISE 0.05    /* make_moons-style noise, added before centring and scaling */
#define MOONS_SHIFT_X 0.5   /* centre of the two half circles' bounding box ... */
#define MOONS_SHIFT_Y 0.25
#define MOONS_SCALE 2.0     /* ... then doubled: x in about [-3, 3], y in about [-1.5, 1.5] */
#define SWISS_SCALE 0.2     /* make_swiss_roll radius t <= 4.5 pi, divided by 5: radius <= 2.83 */
#define SWISS_NOISE 0.1     /* isotropic noise added after scaling */
#define CHECKER_HALF 2.0    /* 4 x 4 board of unit squares on [-2, 2]^2 */
#define RINGS_COUNT 4
#define RINGS_STEP 0.5      /* radii 0.5, 1.0, 1.5, 2.0; ring j drawn with probability r_j / 5 */
#define RINGS_NOISE 0.04    /* isotropic noise added to the point on the circle */
/* Relative spread below which a column counts as constant in cm_transform_fit: the two-pass
 * mean of equal values can differ from them by a few ulps, which must not become a scale. */
#define TRANSFORM_ZERO_SPREAD 1e-12

struct cm_data {
    cm_data_kind kind;
    size_t dim;
    char *description;
    /* gauss: and gmm: laws */
    size_t components;
    double *weights; /* K */
    double *means;   /* K x D */
    double *stds;    /* K */
    double *variances; /* D, gauss: with a spectrum only (else NULL); stds[0] is then NAN */
    double *scales;    /* D, sqrt(variances): the per-coordinate std a point is drawn with */
    /* files */
    size_t rows;
    double *values; /* rows x D */
    /* image sources: shapes (a law) and images (a stored set, rows = images.count) */
    size_t channels, height, width;
    uint64_t shapes_seed; /* shapes: image i of a draw comes from cm_rng_fork(child_i, seed) */
    cm_image_set images;
};

static const char *const kind_names[CM_DATA_KIND_COUNT] = {
    "8gaussians", "moons", "swissroll", "checkerboard", "rings", "gauss", "gmm", "file",
    "shapes",     "images",
};

#define VALID_SOURCES                                                                       \
    "8gaussians, moons, swissroll, checkerboard, rings, gauss:d=D[,mean=M][,std=S|"   \
    ",spectrum=logspace(A,B)], gmm:d=D,k=K[,sep=R][,std=S][,seed=N], shapes:size=S[,seed=N], " \
    "fashion-mnist, fashion-mnist:test, or a path to a .csv/.npy file or a folder of PNG files"

const char *cm_data_kind_name(cm_data_kind kind) {
    if ((int)kind < 0 || kind >= CM_DATA_KIND_COUNT) return "unknown";
    return kind_names[kind];
}

/* ---------------------------------------------------------------- spec parsing */

/* FIELD_SPECTRUM is "logspace(A,B)": real = A, upper = B. */
typedef enum { FIELD_INTEGER, FIELD_REAL, FIELD_SPECTRUM } field_type;

typedef struct {
    const char *key;
    field_type type;
    int seen;
    uint64_t integer;
    double real;
    double upper;
} spec_field;

static int ends_with(const char *text, const char *suffix) {
    size_t n = strlen(text), m = strlen(suffix);
    return n >= m && strcmp(text + n - m, suffix) == 0;
}

/* Parse a decimal integer made of digits only (no sign, no spaces), without overflow. */
static int parse_integer(uint64_t *out, const char *text) {
    if (!*text) return 0;
    uint64_t value = 0;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9') return 0;
        uint64_t digit = (uint64_t)(*c - '0');
        if (value > (UINT64_MAX - digit) / 10) return 0;
        value = value * 10 + digit;
    }
    *out = value;
    return 1;
}

/* A finite number that is all of text[0..length) (no spaces). */
static int parse_real(double *out, const char *text, size_t length) {
    char buffer[SPEC_VALUE_MAX];
    if (length == 0 || length >= sizeof buffer || isspace((unsigned char)text[0])) return 0;
    memcpy(buffer, text, length);
    buffer[length] = '\0';
    char *end = NULL;
    double value = strtod(buffer, &end);
    if (end == buffer || *end != '\0' || !isfinite(value)) return 0;
    *out = value;
    return 1;
}

/* "logspace(A,B)" with finite A, B within +-SPECTRUM_MAX_EXPONENT. */
static cm_status parse_spectrum(spec_field *field, const char *value, const char *source) {
    static const char prefix[] = "logspace(";
    size_t n = strlen(value), p = sizeof prefix - 1;
    const char *comma = strchr(value, ',');
    if (n < p + 4 || strncmp(value, prefix, p) != 0 || value[n - 1] != ')' || !comma ||
        !parse_real(&field->real, value + p, (size_t)(comma - value) - p) ||
        !parse_real(&field->upper, comma + 1, (size_t)(value + n - 1 - comma - 1)))
        return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': %s='%s' is not "
                            "logspace(A,B) with finite numbers A, B", source, field->key, value);
    if (fabs(field->real) > SPECTRUM_MAX_EXPONENT || fabs(field->upper) > SPECTRUM_MAX_EXPONENT)
        return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': %s exponents must be within "
                            "+-%g", source, field->key, SPECTRUM_MAX_EXPONENT);
    return CM_OK;
}

static cm_status parse_field_value(spec_field *field, const char *value, const char *source) {
    if (field->type == FIELD_SPECTRUM) return parse_spectrum(field, value, source);
    if (field->type == FIELD_INTEGER) {
        if (!parse_integer(&field->integer, value))
            return cm_error_set(CM_ERR_INVALID,
                                "data spec '%.100s': %s='%s' is not a non-negative integer",
                                source, field->key, value);
        return CM_OK;
    }
    char *end = NULL;
    double real = isspace((unsigned char)value[0]) ? 0.0 : strtod(value, &end);
    if (!end || end == value || *end != '\0')
        return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': %s='%s' is not a number",
                            source, field->key, value);
    if (!isfinite(real))
        return cm_error_set(CM_ERR_NONFINITE, "data spec '%.100s': %s='%s' is not finite",
                            source, field->key, value);
    field->real = real;
    return CM_OK;
}

/* The next ',' of text outside parentheses (values like logspace(A,B) hold commas), or NULL. */
static const char *next_separator(const char *text) {
    int depth = 0;
    for (const char *c = text; *c; c++) {
        if (*c == '(') depth++;
        else if (*c == ')' && depth > 0) depth--;
        else if (*c == ',' && depth == 0) return c;
    }
    return NULL;
}

/* Parse "key=value,key=value" (body of a spec after "gauss:" or "gmm:") into `fields`. */
static cm_status parse_spec_fields(spec_field *fields, size_t count, const char *body,
                                   const char *source) {
    const char *item = body;
    while (*item) {
        const char *comma = next_separator(item);
        size_t length = comma ? (size_t)(comma - item) : strlen(item);
        const char *equals = memchr(item, '=', length);
        if (length == 0)
            return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': empty field", source);
        if (!equals)
            return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': field '%.*s' is not key=value",
                                source, (int)length, item);
        size_t key_length = (size_t)(equals - item), value_length = length - key_length - 1;
        spec_field *field = NULL;
        for (size_t f = 0; f < count; f++)
            if (strlen(fields[f].key) == key_length && !strncmp(fields[f].key, item, key_length))
                field = &fields[f];
        if (!field) {
            char valid[128] = "";
            for (size_t f = 0; f < count; f++) {
                strncat(valid, f ? ", " : "", sizeof valid - strlen(valid) - 1);
                strncat(valid, fields[f].key, sizeof valid - strlen(valid) - 1);
            }
            return cm_error_set(CM_ERR_INVALID,
                                "data spec '%.100s': unknown key '%.*s' (valid: %s)", source,
                                (int)key_length, item, valid);
        }
        if (field->seen)
            return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': key '%s' given twice", source,
                                field->key);
        if (value_length == 0 || value_length >= SPEC_VALUE_MAX)
            return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': %s has an %s value", source,
                                field->key, value_length ? "overlong" : "empty");
        char value[SPEC_VALUE_MAX];
        memcpy(value, equals + 1, value_length);
        value[value_length] = '\0';
        CM_TRY(parse_field_value(field, value, source));
        field->seen = 1;
        if (!comma) break;
        item = comma + 1;
        if (!*item) return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': empty field", source);
    }
    return CM_OK;
}

static cm_status check_count(const spec_field *field, uint64_t max, const char *what,
                             const char *source) {
    if (!field->seen)
        return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': missing %s= (%s)", source,
                            field->key, what);
    if (field->integer == 0 || field->integer > max)
        return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': %s=%llu is out of range 1..%llu",
                            source, field->key, (unsigned long long)field->integer,
                            (unsigned long long)max);
    return CM_OK;
}

static cm_status check_std(const spec_field *field, const char *source) {
    if (!(field->real > 0.0))
        return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': std=%g must be > 0", source,
                            field->real);
    return CM_OK;
}

/* Shortest "%.*g" that reads back as the same double, so descriptions round-trip. */
static void format_real(char *buffer, size_t size, double value) {
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buffer, size, "%.*g", digits, value);
        if (strtod(buffer, NULL) == value) return;
    }
}

/* ---------------------------------------------------------------- constructors */

static cm_status set_description(cm_data *data, const char *text) {
    size_t length = strlen(text);
    data->description = cm_malloc(length + 1, 1);
    if (!data->description) return cm_error_set(CM_ERR_NOMEM, "data: no memory for description");
    memcpy(data->description, text, length + 1);
    return CM_OK;
}

/* Allocate the K-component law tables of `data` (dim and components already set). */
static cm_status alloc_law(cm_data *data) {
    size_t k = data->components;
    data->weights = cm_malloc(k, sizeof(double));
    data->stds = cm_malloc(k, sizeof(double));
    data->means = cm_malloc(k * data->dim, sizeof(double));
    if (!data->weights || !data->stds || !data->means)
        return cm_error_set(CM_ERR_NOMEM, "data: no memory for %zu x %zu mixture means", k,
                            data->dim);
    return CM_OK;
}

/* Variances 10^(A + (B - A) i / (d - 1)), the last exactly 10^B (as numpy.logspace), and
 * their square roots; stds[0] becomes NAN (data.h). */
static cm_status set_spectrum(cm_data *data, double a, double b) {
    size_t d = data->dim;
    data->variances = cm_malloc(2 * d, sizeof(double));
    if (!data->variances) return cm_error_set(CM_ERR_NOMEM, "data: spectrum of dimension %zu", d);
    data->scales = data->variances + d;
    for (size_t i = 0; i < d; i++) {
        double exponent = d == 1 ? a : i + 1 == d ? b : a + (b - a) * (double)i / (double)(d - 1);
        data->variances[i] = pow(10.0, exponent);
        data->scales[i] = sqrt(data->variances[i]);
    }
    data->stds[0] = NAN;
    return CM_OK;
}

static cm_status open_gauss(cm_data *data, const char *body, const char *source) {
    spec_field fields[] = {{"d", FIELD_INTEGER, 0, 0, 0.0, 0.0},
                           {"mean", FIELD_REAL, 0, 0, GAUSS_DEFAULT_MEAN, 0.0},
                           {"std", FIELD_REAL, 0, 0, GAUSS_DEFAULT_STD, 0.0},
                           {"spectrum", FIELD_SPECTRUM, 0, 0, 0.0, 0.0}};
    CM_TRY(parse_spec_fields(fields, 4, body, source));
    CM_TRY(check_count(&fields[0], DATA_MAX_DIM, "the dimension", source));
    CM_TRY(check_std(&fields[2], source));
    if (fields[2].seen && fields[3].seen)
        return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': give std= or spectrum=, not "
                            "both", source);
    data->kind = CM_DATA_GAUSS;
    data->dim = (size_t)fields[0].integer;
    data->components = 1;
    CM_TRY(alloc_law(data));
    data->weights[0] = 1.0;
    data->stds[0] = fields[2].real;
    for (size_t i = 0; i < data->dim; i++) data->means[i] = fields[1].real;
    char mean[32], std[32], upper[32], text[160];
    format_real(mean, sizeof mean, fields[1].real);
    if (fields[3].seen) {
        CM_TRY(set_spectrum(data, fields[3].real, fields[3].upper));
        format_real(std, sizeof std, fields[3].real);
        format_real(upper, sizeof upper, fields[3].upper);
        snprintf(text, sizeof text, "gauss:d=%zu,mean=%s,spectrum=logspace(%s,%s)", data->dim,
                 mean, std, upper);
    } else {
        format_real(std, sizeof std, fields[2].real);
        snprintf(text, sizeof text, "gauss:d=%zu,mean=%s,std=%s", data->dim, mean, std);
    }
    return set_description(data, text);
}

/* Mixture means m_j = sep * u_j, u_j uniform on the unit sphere: d normals from child j of
 * cm_rng_init(seed), normalised. In d = 1, m_j = sep (j - (K-1)/2), evenly spaced. */
static void place_means(double *means, size_t k, size_t d, double sep, uint64_t seed) {
    cm_rng base, child;
    cm_rng_init(&base, seed);
    for (size_t j = 0; j < k; j++) {
        double *m = means + j * d;
        if (d == 1) {
            m[0] = sep * ((double)j - 0.5 * (double)(k - 1));
            continue;
        }
        cm_rng_fork(&child, &base, j);
        double norm = 0.0;
        while (norm == 0.0) { /* all-zero normals are practically impossible; redraw anyway */
            norm = 0.0;
            for (size_t i = 0; i < d; i++) {
                m[i] = cm_rng_normal(&child);
                norm += m[i] * m[i];
            }
            norm = sqrt(norm);
        }
        for (size_t i = 0; i < d; i++) m[i] *= sep / norm;
    }
}

static cm_status open_gmm(cm_data *data, const char *body, const char *source) {
    spec_field fields[] = {{"d", FIELD_INTEGER, 0, 0, 0.0, 0.0},
                           {"k", FIELD_INTEGER, 0, 0, 0.0, 0.0},
                           {"sep", FIELD_REAL, 0, 0, GMM_DEFAULT_SEP, 0.0},
                           {"std", FIELD_REAL, 0, 0, GMM_DEFAULT_STD, 0.0},
                           {"seed", FIELD_INTEGER, 0, GMM_DEFAULT_SEED, 0.0, 0.0}};
    CM_TRY(parse_spec_fields(fields, 5, body, source));
    CM_TRY(check_count(&fields[0], DATA_MAX_DIM, "the dimension", source));
    CM_TRY(check_count(&fields[1], DATA_MAX_COMPONENTS, "the number of components", source));
    if (fields[2].real < 0.0)
        return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': sep=%g must be >= 0", source,
                            fields[2].real);
    CM_TRY(check_std(&fields[3], source));
    uint64_t d = fields[0].integer, k = fields[1].integer;
    if (d * k > DATA_MAX_GMM_VALUES)
        return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': k*d = %llu means exceed %llu",
                            source, (unsigned long long)(d * k),
                            (unsigned long long)DATA_MAX_GMM_VALUES);
    data->kind = CM_DATA_GMM;
    data->dim = (size_t)d;
    data->components = (size_t)k;
    CM_TRY(alloc_law(data));
    for (size_t j = 0; j < data->components; j++) {
        data->weights[j] = 1.0 / (double)k;
        data->stds[j] = fields[3].real;
    }
    place_means(data->means, data->components, data->dim, fields[2].real, fields[4].integer);
    char sep[32], std[32], text[192];
    format_real(sep, sizeof sep, fields[2].real);
    format_real(std, sizeof std, fields[3].real);
    snprintf(text, sizeof text, "gmm:d=%zu,k=%zu,sep=%s,std=%s,seed=%llu", data->dim,
             data->components, sep, std, (unsigned long long)fields[4].integer);
    return set_description(data, text);
}

/* The rows of a file, all columns or those of `columns` (columns.c); the description is the
 * path, followed by ":columns=LIST" when columns were selected. */
static cm_status open_file(cm_data *data, const char *path, const char *columns) {
    size_t rows = 0, cols = 0;
    char **names = NULL;
    CM_TRY(cm_matrix_read_named(&data->values, &rows, &cols, &names, path));
    data->kind = CM_DATA_FILE;
    cm_status status = CM_OK;
    if (rows == 0 || cols == 0)
        status = cm_error_set(CM_ERR_FORMAT, "data file '%.200s' holds no points (%zu x %zu)",
                              path, rows, cols);
    else if (columns)
        status = cm_columns_select(&data->values, rows, &cols, (const char *const *)names,
                                   columns);
    else
        status = cm_columns_check_index(data->values, rows, cols, (const char *const *)names,
                                        path);
    cm_free(names);
    CM_TRY(status);
    data->rows = rows;
    data->dim = cols;
    if (cols > DATA_MAX_DIM)
        return cm_error_set(CM_ERR_FORMAT, "data file '%.200s': %zu columns exceed %llu", path,
                            cols, (unsigned long long)DATA_MAX_DIM);
    if (!columns) return set_description(data, path);
    size_t length = strlen(path) + strlen(DATA_COLUMNS_SUFFIX) + strlen(columns) + 1;
    data->description = cm_malloc(length, 1);
    if (!data->description) return cm_error_set(CM_ERR_NOMEM, "data: no memory for description");
    snprintf(data->description, length, "%s%s%s", path, DATA_COLUMNS_SUFFIX, columns);
    return CM_OK;
}

/* shapes[:size=S][,seed=N]: the generated image law of docs/data.md. */
static cm_status open_shapes(cm_data *data, const char *body, const char *source) {
    spec_field fields[] = {{"size", FIELD_INTEGER, 0, SHAPES_DEFAULT_SIZE, 0.0, 0.0},
                           {"seed", FIELD_INTEGER, 0, SHAPES_DEFAULT_SEED, 0.0, 0.0}};
    CM_TRY(parse_spec_fields(fields, 2, body, source));
    uint64_t size = fields[0].integer;
    if (size < CM_SHAPES_MIN_SIZE || size > CM_SHAPES_MAX_SIZE)
        return cm_error_set(CM_ERR_INVALID, "data spec '%.100s': size=%llu must be within %d..%d",
                            source, (unsigned long long)size, CM_SHAPES_MIN_SIZE,
                            CM_SHAPES_MAX_SIZE);
    data->kind = CM_DATA_SHAPES;
    data->channels = 1;
    data->height = data->width = (size_t)size;
    data->dim = data->height * data->width;
    data->shapes_seed = fields[1].integer;
    char text[96];
    snprintf(text, sizeof text, "shapes:size=%zu,seed=%llu", data->height,
             (unsigned long long)data->shapes_seed);
    return set_description(data, text);
}

/* data->images was just read: make it the source. */
static cm_status adopt_images(cm_data *data, const char *description) {
    data->kind = CM_DATA_IMAGES;
    data->channels = data->images.channels;
    data->height = data->images.height;
    data->width = data->images.width;
    data->dim = cm_image_set_dim(&data->images);
    data->rows = data->images.count;
    return set_description(data, description);
}

static cm_status no_columns(const char *columns, const char *path) {
    if (!columns) return CM_OK;
    return cm_error_set(CM_ERR_INVALID, "data source '%.100s': columns apply to rows of points "
                        "(.csv and 2-D .npy files), not to images", path);
}

/* An .npy file of 3 or 4 dimensions is an image set; otherwise rows of points (open_file). */
static cm_status open_npy(cm_data *data, const char *path, const char *columns) {
    void *bytes = NULL;
    size_t size = 0;
    cm_npy_info info;
    CM_TRY(cm_file_read_all(&bytes, &size, path, CM_IO_MAX_BYTES + ((uint64_t)1 << 20)));
    cm_status status = cm_npy_parse_info(&info, bytes, size, path);
    int images = status == CM_OK && info.ndim >= 3;
    if (status == CM_OK && images) status = no_columns(columns, path);
    if (status == CM_OK && images) status = cm_image_parse_npy(&data->images, bytes, size, path);
    cm_free(bytes);
    CM_TRY(status);
    return images ? adopt_images(data, path) : open_file(data, path, columns);
}

static int is_directory(const char *path) {
    struct stat info;
    return stat(path, &info) == 0 && S_ISDIR(info.st_mode);
}

static int ends_with_npy(const char *path) {
    size_t n = strlen(path);
    return n >= 4 && path[n - 4] == '.' && tolower((unsigned char)path[n - 3]) == 'n' &&
           tolower((unsigned char)path[n - 2]) == 'p' && tolower((unsigned char)path[n - 1]) == 'y';
}

static cm_status open_path(cm_data *data, const char *path, const char *columns) {
    if (is_directory(path)) {
        CM_TRY(no_columns(columns, path));
        CM_TRY(cm_image_read_png_dir(&data->images, path));
        return adopt_images(data, path);
    }
    return ends_with_npy(path) ? open_npy(data, path, columns) : open_file(data, path, columns);
}

static int names_a_file(const char *source) {
    return strchr(source, '/') || ends_with(source, ".csv") || ends_with(source, ".npy");
}

static cm_status open_source(cm_data *data, const char *source, const char *columns) {
    if (names_a_file(source)) return open_path(data, source, columns);
    if (columns)
        return cm_error_set(CM_ERR_INVALID, "data source '%.100s': columns apply to .csv and .npy "
                            "files only", source);
    if (!strncmp(source, "gauss:", 6)) return open_gauss(data, source + 6, source);
    if (!strncmp(source, "gmm:", 4)) return open_gmm(data, source + 4, source);
    if (!strcmp(source, "shapes")) return open_shapes(data, "", source);
    if (!strncmp(source, "shapes:", 7)) return open_shapes(data, source + 7, source);
    if (!strcmp(source, "fashion-mnist") || !strcmp(source, "fashion-mnist:test")) {
        CM_TRY(cm_image_read_fashion_mnist(&data->images, source[13] == ':'));
        return adopt_images(data, source);
    }
    for (int kind = 0; kind <= CM_DATA_RINGS; kind++) {
        if (strcmp(source, kind_names[kind]) == 0) {
            data->kind = (cm_data_kind)kind;
            data->dim = 2;
            return set_description(data, source);
        }
    }
    if (is_directory(source))
        return cm_error_set(CM_ERR_INVALID, "unknown data source '%.100s' (a folder of PNG files "
                            "is named with a '/', e.g. '%.100s/')", source, source);
    return cm_error_set(CM_ERR_INVALID, "unknown data source '%.100s' (valid: %s)", source,
                        VALID_SOURCES);
}

/* Split "FILE:columns=LIST" (the last such suffix) into a copy of FILE and LIST. *path is
 * cm_malloc'ed when a suffix was found, else NULL. */
static cm_status split_columns_suffix(char **path, const char **list, const char *source) {
    *path = NULL;
    *list = NULL;
    const char *suffix = NULL;
    for (const char *at = strstr(source, DATA_COLUMNS_SUFFIX); at;
         at = strstr(at + 1, DATA_COLUMNS_SUFFIX))
        suffix = at;
    if (!suffix) return CM_OK;
    size_t length = (size_t)(suffix - source);
    if (length == 0)
        return cm_error_set(CM_ERR_INVALID, "data source '%.100s': no file before %s", source,
                            DATA_COLUMNS_SUFFIX);
    *path = cm_malloc(length + 1, 1);
    if (!*path) return cm_error_set(CM_ERR_NOMEM, "data: no memory for a path");
    memcpy(*path, source, length);
    (*path)[length] = '\0';
    *list = suffix + strlen(DATA_COLUMNS_SUFFIX);
    return CM_OK;
}

cm_status cm_data_open_with(cm_data **out, const char *source, const cm_data_options *options) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "cm_data_open: out is NULL");
    *out = NULL;
    if (!source || !*source)
        return cm_error_set(CM_ERR_INVALID, "empty data source (valid: %s)", VALID_SOURCES);
    char *path = NULL;
    const char *columns = options ? options->columns : NULL, *suffix_columns = NULL;
    CM_TRY(split_columns_suffix(&path, &suffix_columns, source));
    cm_status status = CM_OK;
    if (suffix_columns && columns)
        status = cm_error_set(CM_ERR_INVALID, "data source '%.100s' selects columns, and columns "
                              "'%.100s' are given too: give them once", source, columns);
    cm_data *data = status == CM_OK ? cm_calloc(1, sizeof *data) : NULL;
    if (status == CM_OK && !data) status = cm_error_set(CM_ERR_NOMEM, "data: no memory");
    if (status == CM_OK)
        status = open_source(data, path ? path : source, suffix_columns ? suffix_columns : columns);
    cm_free(path);
    if (status != CM_OK) {
        cm_data_free(data);
        return status;
    }
    *out = data;
    return CM_OK;
}

cm_status cm_data_open(cm_data **out, const char *source) {
    return cm_data_open_with(out, source, NULL);
}

cm_status cm_data_from_values(cm_data **out, const double *values, size_t rows, size_t dim,
                              const char *description) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "cm_data_from_values: out is NULL");
    *out = NULL;
    if (!values || rows == 0 || dim == 0 || !description)
        return cm_error_set(CM_ERR_INVALID, "data from values: %zu x %zu, %s", rows, dim,
                            values ? "no description" : "no values");
    if (dim > DATA_MAX_DIM || rows > SIZE_MAX / sizeof(double) / dim)
        return cm_error_set(CM_ERR_INVALID, "data from values: %zu x %zu is too large", rows, dim);
    for (size_t i = 0; i < rows * dim; i++)
        if (!isfinite(values[i]))
            return cm_error_set(CM_ERR_NONFINITE, "data from values: row %zu, column %zu is not "
                                "finite", i / dim, i % dim);
    cm_data *data = cm_calloc(1, sizeof *data);
    if (!data) return cm_error_set(CM_ERR_NOMEM, "data: no memory");
    data->kind = CM_DATA_FILE;
    data->rows = rows;
    data->dim = dim;
    data->values = cm_malloc(rows * dim, sizeof(double));
    cm_status status = data->values ? set_description(data, description)
                                    : cm_error_set(CM_ERR_NOMEM, "data: %zu x %zu", rows, dim);
    if (status != CM_OK) {
        cm_data_free(data);
        return status;
    }
    memcpy(data->values, values, rows * dim * sizeof(double));
    *out = data;
    return CM_OK;
}

void cm_data_free(cm_data *data) {
    if (!data) return;
    cm_free(data->description);
    cm_free(data->weights);
    cm_free(data->means);
    cm_free(data->stds);
    cm_free(data->variances);
    cm_free(data->values);
    cm_image_set_free(&data->images);
    cm_free(data);
}

cm_data_kind cm_data_kind_of(const cm_data *data) { return data->kind; }
size_t cm_data_dim(const cm_data *data) { return data->dim; }
const char *cm_data_describe(const cm_data *data) { return data->description; }
size_t cm_data_rows(const cm_data *data) {
    return data->kind == CM_DATA_FILE || data->kind == CM_DATA_IMAGES ? data->rows : 0;
}
const double *cm_data_values(const cm_data *data) {
    return data->kind == CM_DATA_FILE ? data->values : NULL;
}

void cm_data_copy_rows(const cm_data *data, size_t first, size_t n, double *out) {
    if (data->kind == CM_DATA_FILE) {
        memcpy(out, data->values + first * data->dim, n * data->dim * sizeof(double));
        return;
    }
    for (size_t i = 0; i < n; i++) cm_image_set_row(&data->images, first + i, out + i * data->dim);
}

int cm_data_image_shape(const cm_data *data, size_t *channels, size_t *height, size_t *width) {
    int image = data->kind == CM_DATA_SHAPES || data->kind == CM_DATA_IMAGES;
    if (channels) *channels = image ? data->channels : 0;
    if (height) *height = image ? data->height : 0;
    if (width) *width = image ? data->width : 0;
    return image;
}

size_t cm_data_classes(const cm_data *data) {
    if (data->kind == CM_DATA_SHAPES) return CM_SHAPE_COUNT;
    return data->kind == CM_DATA_IMAGES ? data->images.classes : 0;
}

const char *cm_data_class_name(const cm_data *data, size_t label) {
    if (label >= cm_data_classes(data)) return NULL;
    if (data->kind == CM_DATA_SHAPES) return cm_shape_class_name((cm_shape_class)label);
    return data->images.class_names ? data->images.class_names[label] : NULL;
}

const size_t *cm_data_labels(const cm_data *data) {
    return data->kind == CM_DATA_IMAGES ? data->images.labels : NULL;
}

static uint64_t fnv_bytes(uint64_t hash, const unsigned char *bytes, size_t n) {
    for (size_t i = 0; i < n; i++) hash = (hash ^ bytes[i]) * FNV_PRIME;
    return hash;
}

/* value as 8 little-endian bytes, whatever the host's byte order */
static uint64_t fnv_u64(uint64_t hash, uint64_t value) {
    for (int b = 0; b < 8; b++) hash = (hash ^ ((value >> 8 * b) & 0xff)) * FNV_PRIME;
    return hash;
}

uint64_t cm_data_fingerprint(const cm_data *data) {
    uint64_t hash = FNV_OFFSET;
    if (data->kind == CM_DATA_FILE) {
        hash = fnv_u64(fnv_u64(hash, data->rows), data->dim);
        for (size_t i = 0; i < data->rows * data->dim; i++) {
            uint64_t bits;
            memcpy(&bits, &data->values[i], sizeof bits);
            hash = fnv_u64(hash, bits);
        }
        return hash;
    }
    if (data->kind != CM_DATA_IMAGES) return 0;
    const cm_image_set *set = &data->images;
    size_t count = set->count * cm_image_set_dim(set);
    hash = fnv_u64(fnv_u64(fnv_u64(fnv_u64(hash, set->count), set->channels), set->height),
                   set->width);
    hash = fnv_u64(hash, set->bytes ? 1 : 4); /* bytes per stored pixel */
    if (set->bytes) hash = fnv_bytes(hash, set->bytes, count);
    for (size_t i = 0; !set->bytes && i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &set->pixels[i], sizeof bits);
        hash = fnv_u64(hash, bits);
    }
    hash = fnv_u64(hash, set->classes);
    for (size_t i = 0; set->labels && i < set->count; i++) hash = fnv_u64(hash, set->labels[i]);
    return hash;
}

int cm_data_has_fixed_transform(const cm_data *data) {
    return data->kind == CM_DATA_SHAPES || data->kind == CM_DATA_IMAGES;
}

cm_status cm_data_fixed_transform(cm_transform *out, const cm_data *data) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "cm_data_fixed_transform: out is NULL");
    out->dim = 0;
    out->shift = out->scale = NULL;
    if (!cm_data_has_fixed_transform(data))
        return cm_error_set(CM_ERR_INVALID, "data source '%.100s' (%s) has no fixed transform; "
                            "fit one (cm_transform_fit)", data->description,
                            cm_data_kind_name(data->kind));
    CM_TRY(cm_transform_identity(out, data->dim));
    for (size_t i = 0; i < data->dim; i++) {
        out->shift[i] = IMAGE_TRANSFORM_SHIFT;
        out->scale[i] = IMAGE_TRANSFORM_SCALE;
    }
    return CM_OK;
}

cm_status cm_data_gmm(cm_gmm_view *out, const cm_data *data) {
    if (!out || !data) return cm_error_set(CM_ERR_INVALID, "cm_data_gmm: NULL argument");
    if (data->kind != CM_DATA_GAUSS && data->kind != CM_DATA_GMM)
        return cm_error_set(CM_ERR_INVALID, "data source '%.100s' (%s) has no known mixture law",
                            data->description, cm_data_kind_name(data->kind));
    out->dim = data->dim;
    out->components = data->components;
    out->weights = data->weights;
    out->means = data->means;
    out->stds = data->stds;
    out->variances = data->variances;
    return CM_OK;
}

/* ---------------------------------------------------------------- 2-D toy generators
 * Each writes one point out[0..2) from its own child generator; the order of draws is part of
 * the definition (docs/data.md). */

static void toy_8gaussians(cm_rng *rng, double *out) {
    double angle = (double)cm_rng_below(rng, 8) * PI / 4.0;
    double z0 = cm_rng_normal(rng), z1 = cm_rng_normal(rng);
    out[0] = G8_RADIUS * cos(angle) + G8_STD * z0;
    out[1] = G8_RADIUS * sin(angle) + G8_STD * z1;
}

static void toy_moons(cm_rng *rng, double *out) {
    int lower = (int)cm_rng_below(rng, 2);
    double a = PI * cm_rng_uniform(rng);
    double z0 = cm_rng_normal(rng), z1 = cm_rng_normal(rng);
    double x = lower ? 1.0 - cos(a) : cos(a);
    double y = lower ? 0.5 - sin(a) : sin(a);
    out[0] = MOONS_SCALE * (x + MOONS_NOISE * z0 - MOONS_SHIFT_X);
    out[1] = MOONS_SCALE * (y + MOONS_NOISE * z1 - MOONS_SHIFT_Y);
}

static void toy_swissroll(cm_rng *rng, double *out) {
    double t = 1.5 * PI * (1.0 + 2.0 * cm_rng_uniform(rng));
    double z0 = cm_rng_normal(rng), z1 = cm_rng_normal(rng);
    out[0] = SWISS_SCALE * t * cos(t) + SWISS_NOISE * z0;
    out[1] = SWISS_SCALE * t * sin(t) + SWISS_NOISE * z1;
}

/* FFJORD's board: x1 uniform on [-2, 2); x2 = v - 2 k + (floor(x1) mod 2), v uniform on [0, 1),
 * k in {0, 1}: the unit squares with floor(x1) + floor(x2) even. */
static void toy_checkerboard(cm_rng *rng, double *out) {
    double x1 = 2.0 * CHECKER_HALF * cm_rng_uniform(rng) - CHECKER_HALF;
    double v = cm_rng_uniform(rng);
    double k = (double)cm_rng_below(rng, 2);
    double parity = (double)((long)floor(x1) & 1L); /* floor(x1) mod 2, also for negatives */
    out[0] = x1;
    out[1] = v - 2.0 * k + parity;
}

static void toy_rings(cm_rng *rng, double *out) {
    /* ring j (radius (j+1) * step) with probability (j+1) / (1 + 2 + ... + RINGS_COUNT) */
    uint64_t total = RINGS_COUNT * (RINGS_COUNT + 1) / 2;
    uint64_t ticket = cm_rng_below(rng, total);
    int ring = 0;
    uint64_t upto = 1; /* tickets [0, upto) belong to rings 0..ring */
    while (ticket >= upto) {
        ring++;
        upto += (uint64_t)(ring + 1);
    }
    double angle = 2.0 * PI * cm_rng_uniform(rng);
    double z0 = cm_rng_normal(rng), z1 = cm_rng_normal(rng);
    double radius = RINGS_STEP * (double)(ring + 1);
    out[0] = radius * cos(angle) + RINGS_NOISE * z0;
    out[1] = radius * sin(angle) + RINGS_NOISE * z1;
}

/* Mixture point: component j uniform (all our mixtures have equal weights, so this is the
 * exact draw by weight), then mean_j + std_j * z, z ~ N(0, I_D); with a spectrum,
 * mean + scale_i * z_i. (cm_law_sample repeats this order of draws and arithmetic.) */
static void law_point(const cm_data *data, cm_rng *rng, double *out) {
    size_t j = (size_t)cm_rng_below(rng, data->components); /* K = 1 draws nothing */
    const double *mean = data->means + j * data->dim;
    if (data->scales) {
        for (size_t i = 0; i < data->dim; i++)
            out[i] = mean[i] + data->scales[i] * cm_rng_normal(rng);
        return;
    }
    double std = data->stds[j];
    for (size_t i = 0; i < data->dim; i++) out[i] = mean[i] + std * cm_rng_normal(rng);
}

/* One point from its own child generator; *label receives its class (CM_DATA_NO_LABEL for
 * unlabelled sources). */
static void sample_point(const cm_data *data, cm_rng *rng, double *out, size_t *label) {
    *label = CM_DATA_NO_LABEL;
    switch (data->kind) {
    case CM_DATA_8GAUSSIANS: toy_8gaussians(rng, out); break;
    case CM_DATA_MOONS: toy_moons(rng, out); break;
    case CM_DATA_SWISSROLL: toy_swissroll(rng, out); break;
    case CM_DATA_CHECKERBOARD: toy_checkerboard(rng, out); break;
    case CM_DATA_RINGS: toy_rings(rng, out); break;
    case CM_DATA_GAUSS:
    case CM_DATA_GMM: law_point(data, rng, out); break;
    case CM_DATA_FILE: {
        size_t row = (size_t)cm_rng_below(rng, data->rows);
        memcpy(out, data->values + row * data->dim, data->dim * sizeof(double));
        break;
    }
    case CM_DATA_SHAPES: {
        cm_rng stream;
        cm_shape_params params;
        cm_rng_fork(&stream, rng, data->shapes_seed);
        cm_shapes_draw(out, &params, data->height, &stream);
        *label = (size_t)params.shape;
        break;
    }
    case CM_DATA_IMAGES: {
        size_t row = (size_t)cm_rng_below(rng, data->rows);
        cm_image_set_row(&data->images, row, out);
        if (data->images.labels) *label = data->images.labels[row];
        break;
    }
    case CM_DATA_KIND_COUNT: break;
    }
}

void cm_data_sample_labelled(const cm_data *data, cm_rng *rng, size_t n, double *out,
                             size_t *out_labels) {
    uint64_t base = rng->position;
    for (size_t i = 0; i < n; i++) {
        cm_rng point;
        size_t label;
        cm_rng_fork(&point, rng, base + i);
        sample_point(data, &point, out + i * data->dim, &label);
        if (out_labels) out_labels[i] = label;
    }
    rng->position = base + n;
}

void cm_data_sample(const cm_data *data, cm_rng *rng, size_t n, double *out) {
    cm_data_sample_labelled(data, rng, n, out, NULL);
}

/* ---------------------------------------------------------------- standardising transform */

cm_status cm_transform_identity(cm_transform *out, size_t dim) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "cm_transform_identity: out is NULL");
    out->dim = 0;
    out->shift = out->scale = NULL;
    if (dim == 0) return cm_error_set(CM_ERR_INVALID, "transform: dimension 0");
    double *shift = cm_malloc(dim, sizeof(double)), *scale = cm_malloc(dim, sizeof(double));
    if (!shift || !scale) {
        cm_free(shift);
        cm_free(scale);
        return cm_error_set(CM_ERR_NOMEM, "transform: no memory for dimension %zu", dim);
    }
    for (size_t i = 0; i < dim; i++) {
        shift[i] = 0.0;
        scale[i] = 1.0;
    }
    out->dim = dim;
    out->shift = shift;
    out->scale = scale;
    return CM_OK;
}

cm_status cm_transform_fit(cm_transform *out, const double *x, size_t n, size_t dim,
                           double target_std) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "cm_transform_fit: out is NULL");
    out->dim = 0;
    out->shift = out->scale = NULL;
    if (!x || n == 0 || dim == 0)
        return cm_error_set(CM_ERR_INVALID, "transform fit: need points (n=%zu, dim=%zu)", n, dim);
    if (!(target_std > 0.0) || !isfinite(target_std))
        return cm_error_set(CM_ERR_INVALID, "transform fit: target std %g must be finite and > 0",
                            target_std);
    for (size_t k = 0; k < n * dim; k++)
        if (!isfinite(x[k]))
            return cm_error_set(CM_ERR_NONFINITE, "transform fit: point %zu coordinate %zu is %g",
                                k / dim, k % dim, x[k]);
    CM_TRY(cm_transform_identity(out, dim));
    for (size_t i = 0; i < dim; i++) {
        double mean = 0.0, variance = 0.0; /* two passes: mean, then squared deviations */
        for (size_t r = 0; r < n; r++) mean += x[r * dim + i];
        mean /= (double)n;
        for (size_t r = 0; r < n; r++) {
            double deviation = x[r * dim + i] - mean;
            variance += deviation * deviation;
        }
        double std = sqrt(variance / (double)n);
        out->shift[i] = mean;
        out->scale[i] = std > TRANSFORM_ZERO_SPREAD * fabs(mean) && std > 0.0 ? std / target_std
                                                                               : 1.0;
    }
    return CM_OK;
}

void cm_transform_free(cm_transform *transform) {
    if (!transform) return;
    cm_free(transform->shift);
    cm_free(transform->scale);
    transform->shift = transform->scale = NULL;
    transform->dim = 0;
}

void cm_transform_apply(const cm_transform *transform, double *x, size_t n) {
    size_t dim = transform->dim;
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < dim; i++)
            x[r * dim + i] = (x[r * dim + i] - transform->shift[i]) / transform->scale[i];
}

void cm_transform_invert(const cm_transform *transform, double *x, size_t n) {
    size_t dim = transform->dim;
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < dim; i++)
            x[r * dim + i] = x[r * dim + i] * transform->scale[i] + transform->shift[i];
}
