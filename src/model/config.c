/* config.c: training configuration defaults with their sources, range checks, and JSON. */
#include "cm/config.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"

/* Names of every enum of the config: they drive the parsers, the JSON form and --help. */
static const char *const method_names[] = {"lhw", "ct", "ict", "dsm", "cd", "cd2"};
static const char *const solver_names[] = {"euler", "heun"};
static const char *const teacher_names[] = {"online", "sequential"};
static const char *const loss_names[] = {"l2", "pseudo-huber"};
static const char *const weighting_names[] = {"none", "inverse-gap", "edm"};
static const char *const lr_schedule_names[] = {"constant", "cosine"};

static cm_status parse_name(int *out, const char *text, const char *const *names, int count,
                            const char *what) {
    for (int i = 0; i < count; i++)
        if (text && strcmp(text, names[i]) == 0) {
            *out = i;
            return CM_OK;
        }
    char valid[128] = "";
    for (int i = 0; i < count; i++) {
        strncat(valid, names[i], sizeof valid - strlen(valid) - 1);
        if (i + 1 < count) strncat(valid, ", ", sizeof valid - strlen(valid) - 1);
    }
    return cm_error_set(CM_ERR_INVALID, "unknown %s '%s' (valid: %s)", what, text ? text : "",
                        valid);
}

/* name and parse functions of one enum */
#define ENUM_FUNCTIONS(type, prefix, names, count, what)                       \
    const char *prefix##_name(type value) {                                    \
        return (int)value >= 0 && (int)value < (count) ? names[value] : "?";   \
    }                                                                          \
    cm_status prefix##_parse(type *out, const char *text) {                    \
        int value;                                                             \
        CM_TRY(parse_name(&value, text, names, (count), what));                \
        *out = (type)value;                                                    \
        return CM_OK;                                                          \
    }
ENUM_FUNCTIONS(cm_method, cm_method, method_names, CM_METHOD_COUNT, "method")
ENUM_FUNCTIONS(cm_teacher, cm_teacher, teacher_names, CM_TEACHER_COUNT, "teacher")
ENUM_FUNCTIONS(cm_loss, cm_loss, loss_names, CM_LOSS_COUNT, "loss")
ENUM_FUNCTIONS(cm_solver, cm_solver, solver_names, CM_SOLVER_COUNT, "solver")
ENUM_FUNCTIONS(cm_weighting, cm_weighting, weighting_names, CM_WEIGHTING_COUNT, "weighting")
ENUM_FUNCTIONS(cm_lr_schedule, cm_lr_schedule, lr_schedule_names, CM_LR_SCHEDULE_COUNT,
               "learning-rate schedule")
#undef ENUM_FUNCTIONS

int cm_method_is_distillation(cm_method method) {
    return method == CM_METHOD_CD || method == CM_METHOD_CD2;
}

int cm_method_is_ve_consistency(cm_method method) {
    return method == CM_METHOD_CT || method == CM_METHOD_ICT || cm_method_is_distillation(method);
}

cm_train_config cm_train_config_default(cm_method method, size_t dim) {
    cm_train_config c = {0};
    c.method = method;
    /* Values marked "measured" are ours: chosen by the runs in docs/training.md on the 2-D
     * sets, where the paper's value (given beside it) trained worse. Each is a flag. */
    c.network = (cm_mlp_config){.dim = dim,
                                .width = 256,  /* the reference network */
                                .depth = 3,
                                .embed = 64,   /* measured (32 and 16 frequencies did worse) */
                                .embed_max_frequency = 1000.0}; /* measured (16, 100, 300 worse) */
    c.adam = cm_adam_config_default(); /* betas (0.9, 0.999), eps 1e-8 [CM], [iCT] */
    c.steps = 16000;                   /* measured: about 2 minutes on 2 cores at width 256 */
    c.adam.learning_rate = 1e-3;       /* measured; [CM] and [iCT] use 1e-4 to 2e-4 on images */
    c.lr_schedule = CM_LR_COSINE;      /* measured: cosine decay to 0 ([iCT]: constant rate) */
    c.adam.final_fraction = 0.0;
    c.batch = 512;
    c.seed = 0;
    c.ema_decay = 0.999;               /* evaluation EMA (ours; [iCT] uses 0.99993 for 400k steps) */
    c.sigma_data = 0.5;                /* [CM] */
    c.sigma_min = 0.002;               /* [CM] */
    c.sigma_max = 10.0;                /* measured; [CM], [iCT]: 80 (images of std 0.5 in 3072 dims) */
    c.rho = 7.0;                       /* [CM] */
    c.chain_T = 100;                   /* [LHW] chain length: measured (T = 1000 did worse) */
    c.c0 = 2.0;                        /* SPEC section 1 */
    c.c1 = 4.0;
    c.teacher = CM_TEACHER_ONLINE;
    c.ct_s0 = 2;                       /* [CM] appendix: s0 = 2, s1 = 150, mu0 = 0.9 */
    c.ct_s1 = 150;
    c.ct_mu0 = 0.9;
    c.ct_target_ema = 0.0;             /* measured: no EMA target; [CM]'s adaptive mu(k) (-1)
                                          collapses here, as the PyTorch run did */
    c.ict_s0 = 10;                     /* [iCT]: s0 = 10, s1 = 1280 */
    c.ict_s1 = 1280;
    c.ict_p_mean = 0.0;                /* measured; [iCT]: -1.1 */
    c.ict_p_std = 2.0;                 /* [iCT] */
    c.huber_c = 0.0;                   /* 0.00054 sqrt(D) [iCT] */
    /* [iCT]: pseudo-Huber with weights 1 / (sigma_{i+1} - sigma_i); [CM]: l2, unweighted;
     * [LHW]: l2 in the paper; we measured pseudo-Huber with the same weights to train better. */
    c.loss = method == CM_METHOD_CT ? CM_LOSS_L2 : CM_LOSS_PSEUDO_HUBER;
    c.weighting = method == CM_METHOD_CT ? CM_WEIGHTING_NONE : CM_WEIGHTING_INVERSE_GAP;
    c.dsm_p_mean = -1.2;               /* EDM (Karras et al. 2022), table 1 */
    c.dsm_p_std = 1.2;
    c.cd_levels = 18;                  /* [CM] CD on CIFAR-10: N = 18 with Heun */
    c.cd_solver = CM_SOLVER_HEUN;
    if (method == CM_METHOD_DSM) {     /* EDM: l2 on D with weight (sigma^2 + sd^2) / (sigma sd)^2 */
        c.loss = CM_LOSS_L2;
        c.weighting = CM_WEIGHTING_EDM;
        c.adam.learning_rate = 1e-2;   /* measured on 8gaussians (docs/sampling.md): at 1e-3 and
                                          3e-3 the loss stays on the plateau of the Gaussian
                                          denoiser (D = c_skip x) for thousands of steps */
        c.network.depth = 2;           /* measured: depth 3 stays on that plateau at 1e-3 and
                                          diverges at 1e-2 */
    } else if (method == CM_METHOD_CD || method == CM_METHOD_CD2) {
        /* [CM] CD: l2 (or LPIPS on images), lambda = 1, mu = 0.95; cd2 keeps all of it */
        c.loss = CM_LOSS_L2;
        c.weighting = CM_WEIGHTING_NONE;
        c.ct_target_ema = 0.95;
        c.network.two_time = method == CM_METHOD_CD2;
    }
    return c;
}

double cm_train_config_huber_c(const cm_train_config *c) {
    return c->huber_c > 0 ? c->huber_c : 0.00054 * sqrt((double)c->network.dim);
}

#define CHECK(condition, ...) \
    if (!(condition)) return cm_error_set(CM_ERR_INVALID, __VA_ARGS__)

/* Size limits, checked before anything is allocated from a config (which may come from a file):
 * 2^28 parameters (1 GiB of float32 per copy; the trainer keeps about seven copies), and 2^28
 * activations per layer of a batch (B times the widest layer). Far beyond a CPU MLP. */
#define CONFIG_MAX_PARAMS ((size_t)1 << 28)
#define CONFIG_MAX_BATCH_VALUES ((size_t)1 << 28)

cm_status cm_train_config_check(const cm_train_config *c) {
    CHECK(c->method < CM_METHOD_COUNT, "config: unknown method %d", (int)c->method);
    cm_mlp_layout layout;
    CM_TRY(cm_mlp_layout_init(&layout, &c->network));
    CM_TRY(cm_adam_config_check(&c->adam));
    CHECK(c->steps >= 1 && c->steps <= 1000000000, "config: steps %zu out of [1, 1e9]", c->steps);
    CHECK(c->batch >= 1 && c->batch <= 1048576, "config: batch %zu out of [1, 1048576]", c->batch);
    CHECK(layout.param_count <= CONFIG_MAX_PARAMS, "config: the network has %zu parameters, more "
          "than %zu", layout.param_count, CONFIG_MAX_PARAMS);
    size_t widest = layout.in[0] > c->network.width ? layout.in[0] : c->network.width;
    CHECK(c->batch <= CONFIG_MAX_BATCH_VALUES / widest, "config: batch %zu times the widest layer "
          "(%zu) exceeds %zu values", c->batch, widest, CONFIG_MAX_BATCH_VALUES);
    CHECK(c->ema_decay >= 0 && c->ema_decay < 1, "config: ema %g must be in [0, 1)", c->ema_decay);
    CHECK(c->sigma_data > 0 && isfinite(c->sigma_data), "config: sigma_data %g must be > 0",
          c->sigma_data);
    CHECK(c->sigma_min > 0 && c->sigma_max > c->sigma_min && isfinite(c->sigma_max),
          "config: need 0 < sigma_min (%g) < sigma_max (%g)", c->sigma_min, c->sigma_max);
    CHECK(c->rho > 0 && isfinite(c->rho), "config: rho %g must be > 0", c->rho);
    CHECK(c->chain_T >= 2 && c->chain_T <= 10000000, "config: T %zu out of [2, 1e7]", c->chain_T);
    CHECK(c->c0 > 0 && c->c1 > 0 && isfinite(c->c0) && isfinite(c->c1),
          "config: c0 (%g) and c1 (%g) must be > 0", c->c0, c->c1);
    CHECK(c->teacher < CM_TEACHER_COUNT, "config: unknown teacher %d", (int)c->teacher);
    CHECK(c->loss < CM_LOSS_COUNT, "config: unknown loss %d", (int)c->loss);
    CHECK(c->weighting < CM_WEIGHTING_COUNT, "config: unknown weighting %d", (int)c->weighting);
    CHECK(c->lr_schedule < CM_LR_SCHEDULE_COUNT, "config: unknown schedule %d", (int)c->lr_schedule);
    CHECK(c->ct_s0 >= 2 && c->ct_s1 >= c->ct_s0 && c->ct_s1 <= 100000,
          "config: CT curriculum needs 2 <= s0 (%zu) <= s1 (%zu) <= 1e5", c->ct_s0, c->ct_s1);
    CHECK(c->ct_mu0 > 0 && c->ct_mu0 < 1, "config: CT mu0 %g must be in (0, 1)", c->ct_mu0);
    CHECK(c->ct_target_ema < 1 && isfinite(c->ct_target_ema),
          "config: target EMA %g must be < 1 (negative: adaptive)",
          c->ct_target_ema);
    CHECK(c->ict_s0 >= 1 && c->ict_s1 >= c->ict_s0 && c->ict_s1 <= 100000,
          "config: iCT curriculum needs 1 <= s0 (%zu) <= s1 (%zu) <= 1e5", c->ict_s0, c->ict_s1);
    CHECK(isfinite(c->ict_p_mean) && c->ict_p_std > 0 && isfinite(c->ict_p_std),
          "config: iCT lognormal (%g, %g) needs a finite mean and std > 0", c->ict_p_mean,
          c->ict_p_std);
    CHECK(isfinite(c->huber_c) && c->huber_c >= 0, "config: huber_c %g must be >= 0", c->huber_c);
    CHECK(isfinite(c->dsm_p_mean) && c->dsm_p_std > 0 && isfinite(c->dsm_p_std),
          "config: dsm lognormal (%g, %g) needs a finite mean and std > 0", c->dsm_p_mean,
          c->dsm_p_std);
    CHECK(c->cd_levels >= 2 && c->cd_levels <= 100000, "config: cd levels %zu out of [2, 1e5]",
          c->cd_levels);
    CHECK(c->cd_solver < CM_SOLVER_COUNT, "config: unknown solver %d", (int)c->cd_solver);
    CHECK(c->weighting != CM_WEIGHTING_EDM || c->method == CM_METHOD_DSM,
          "config: the edm weighting applies to dsm only (method %s)", cm_method_name(c->method));
    CHECK(!cm_method_is_distillation(c->method) || c->ct_target_ema >= 0,
          "config: %s needs a fixed target EMA in [0, 1) (given %g)", cm_method_name(c->method),
          c->ct_target_ema);
    CHECK(c->network.two_time == (c->method == CM_METHOD_CD2),
          "config: the network takes a target level exactly for cd2 (method %s, two_time %d)",
          cm_method_name(c->method), c->network.two_time);
    return CM_OK;
}

/* One table drives both directions of the JSON form. Enum fields carry their names. */
typedef enum { FIELD_SIZE, FIELD_DOUBLE, FIELD_U64, FIELD_ENUM } field_kind;
typedef struct {
    const char *key;
    field_kind kind;
    size_t offset;
    const char *const *names; /* FIELD_ENUM: value i is names[i] */
    int name_count;
} field;

#define F(key, kind, member) {key, kind, offsetof(cm_train_config, member), NULL, 0}
#define E(key, member, names) \
    {key, FIELD_ENUM, offsetof(cm_train_config, member), names, sizeof names / sizeof names[0]}
static const field fields[] = {
    E("method", method, method_names),
    F("dim", FIELD_SIZE, network.dim),
    F("width", FIELD_SIZE, network.width),
    F("depth", FIELD_SIZE, network.depth),
    F("embed", FIELD_SIZE, network.embed),
    F("embed_max_frequency", FIELD_DOUBLE, network.embed_max_frequency),
    F("lr", FIELD_DOUBLE, adam.learning_rate),
    F("beta1", FIELD_DOUBLE, adam.beta1),
    F("beta2", FIELD_DOUBLE, adam.beta2),
    F("adam_eps", FIELD_DOUBLE, adam.epsilon),
    F("weight_decay", FIELD_DOUBLE, adam.weight_decay),
    F("warmup", FIELD_SIZE, adam.warmup_steps),
    F("clip", FIELD_DOUBLE, adam.clip_norm),
    E("lr_schedule", lr_schedule, lr_schedule_names),
    F("final_lr_fraction", FIELD_DOUBLE, adam.final_fraction),
    F("steps", FIELD_SIZE, steps),
    F("batch", FIELD_SIZE, batch),
    F("seed", FIELD_U64, seed),
    F("ema", FIELD_DOUBLE, ema_decay),
    F("sigma_data", FIELD_DOUBLE, sigma_data),
    E("loss", loss, loss_names),
    E("weighting", weighting, weighting_names),
    F("sigma_min", FIELD_DOUBLE, sigma_min),
    F("sigma_max", FIELD_DOUBLE, sigma_max),
    F("rho", FIELD_DOUBLE, rho),
    F("T", FIELD_SIZE, chain_T),
    F("c0", FIELD_DOUBLE, c0),
    F("c1", FIELD_DOUBLE, c1),
    E("teacher", teacher, teacher_names),
    F("ct_s0", FIELD_SIZE, ct_s0),
    F("ct_s1", FIELD_SIZE, ct_s1),
    F("ct_mu0", FIELD_DOUBLE, ct_mu0),
    F("target_ema", FIELD_DOUBLE, ct_target_ema),
    F("ict_s0", FIELD_SIZE, ict_s0),
    F("ict_s1", FIELD_SIZE, ict_s1),
    F("ict_p_mean", FIELD_DOUBLE, ict_p_mean),
    F("ict_p_std", FIELD_DOUBLE, ict_p_std),
    F("huber_c", FIELD_DOUBLE, huber_c),
    F("dsm_p_mean", FIELD_DOUBLE, dsm_p_mean),
    F("dsm_p_std", FIELD_DOUBLE, dsm_p_std),
    F("cd_levels", FIELD_SIZE, cd_levels),
    E("cd_solver", cd_solver, solver_names),
};
#undef F
#undef E
#define FIELD_COUNT (sizeof fields / sizeof fields[0])

/* The JSON value of field f of c ("0.001", "\"ict\"", ...) into buffer[capacity]; returns the
 * length snprintf reports. */
static int format_field(char *buffer, size_t capacity, const field *f, const cm_train_config *c) {
    const void *p = (const char *)c + f->offset;
    switch (f->kind) {
    case FIELD_SIZE: return snprintf(buffer, capacity, "%zu", *(const size_t *)p);
    case FIELD_U64:
        return snprintf(buffer, capacity, "%llu", (unsigned long long)*(const uint64_t *)p);
    case FIELD_DOUBLE: return snprintf(buffer, capacity, "%.17g", *(const double *)p);
    case FIELD_ENUM: { /* every enum member is stored as an int-sized enum */
        int value = *(const int *)p;
        return snprintf(buffer, capacity, "\"%s\"",
                        value >= 0 && value < f->name_count ? f->names[value] : "?");
    }
    }
    return snprintf(buffer, capacity, "null");
}

cm_status cm_train_config_to_json(char **out, const cm_train_config *config) {
    *out = NULL;
    char buffer[4096];
    size_t used = 0;
    used += (size_t)snprintf(buffer + used, sizeof buffer - used, "{");
    for (size_t i = 0; i < FIELD_COUNT && used < sizeof buffer; i++) {
        used += (size_t)snprintf(buffer + used, sizeof buffer - used, "\"%s\": ", fields[i].key);
        if (used < sizeof buffer)
            used += (size_t)format_field(buffer + used, sizeof buffer - used, &fields[i], config);
        if (i + 1 < FIELD_COUNT && used < sizeof buffer)
            used += (size_t)snprintf(buffer + used, sizeof buffer - used, ", ");
    }
    if (used < sizeof buffer) used += (size_t)snprintf(buffer + used, sizeof buffer - used, "}");
    if (used >= sizeof buffer) return cm_error_set(CM_ERR_INVALID, "config JSON is too long");
    char *text = cm_malloc(used + 1, 1);
    if (!text) return cm_error_set(CM_ERR_NOMEM, "config JSON");
    memcpy(text, buffer, used + 1);
    *out = text;
    return CM_OK;
}

cm_status cm_train_config_diff(const cm_train_config *given, const cm_train_config *stored) {
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        char a[64], b[64];
        format_field(a, sizeof a, &fields[i], given);
        format_field(b, sizeof b, &fields[i], stored);
        if (strcmp(a, b) != 0)
            return cm_error_set(CM_ERR_INVALID, "\"%s\" is %s, the stored run has %s",
                                fields[i].key, a, b);
    }
    return CM_OK;
}

/* A JSON number that is an integer in [0, max]. */
static int integer_value(const cJSON *item, double max, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!(v >= 0 && v <= max) || floor(v) != v) return 0;
    *out = (uint64_t)v;
    return 1;
}

static cm_status read_field(cm_train_config *config, const field *f, const cJSON *item,
                            const char *name) {
    char *p = (char *)config + f->offset;
    uint64_t integer;
    switch (f->kind) {
    case FIELD_SIZE:
        if (!integer_value(item, 1e15, &integer))
            return cm_error_set(CM_ERR_FORMAT, "%s: \"%s\" must be a non-negative integer", name,
                                f->key);
        *(size_t *)p = (size_t)integer;
        return CM_OK;
    case FIELD_U64:
        /* Seeds above 2^53 cannot travel through a JSON number exactly; they are refused. */
        if (!integer_value(item, 9007199254740992.0, &integer))
            return cm_error_set(CM_ERR_FORMAT, "%s: \"%s\" must be an integer in [0, 2^53]", name,
                                f->key);
        *(uint64_t *)p = integer;
        return CM_OK;
    case FIELD_DOUBLE:
        if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
            return cm_error_set(CM_ERR_FORMAT, "%s: \"%s\" must be a finite number", name, f->key);
        *(double *)p = item->valuedouble;
        return CM_OK;
    case FIELD_ENUM: {
        int value;
        if (!cJSON_IsString(item))
            return cm_error_set(CM_ERR_FORMAT, "%s: \"%s\" must be a string", name, f->key);
        if (parse_name(&value, item->valuestring, f->names, f->name_count, f->key) != CM_OK)
            return cm_error_set(CM_ERR_FORMAT, "%s: %s", name, cm_error_detail());
        *(int *)p = value;
        return CM_OK;
    }
    }
    return CM_ERR_INVALID;
}

cm_status cm_train_config_from_json(cm_train_config *out, const char *json, const char *name) {
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return cm_error_set(CM_ERR_FORMAT, "%s: configuration is not a JSON object", name);
    }
    cm_train_config config;
    cm_status status = CM_OK;
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(root, "method");
    const cJSON *dim = cJSON_GetObjectItemCaseSensitive(root, "dim");
    uint64_t dim_value = 0;
    if (!cJSON_IsString(method) || !integer_value(dim, 1e9, &dim_value)) {
        cJSON_Delete(root);
        return cm_error_set(CM_ERR_FORMAT, "%s: configuration needs \"method\" and \"dim\"", name);
    }
    cm_method m;
    if (cm_method_parse(&m, method->valuestring) != CM_OK) {
        cJSON_Delete(root);
        return cm_error_set(CM_ERR_FORMAT, "%s: %s", name, cm_error_detail());
    }
    config = cm_train_config_default(m, (size_t)dim_value);
    int seen[FIELD_COUNT] = {0};
    for (const cJSON *item = root->child; item && status == CM_OK; item = item->next) {
        size_t found = FIELD_COUNT;
        for (size_t i = 0; i < FIELD_COUNT; i++)
            if (item->string && strcmp(item->string, fields[i].key) == 0) found = i;
        if (found == FIELD_COUNT)
            status = cm_error_set(CM_ERR_FORMAT, "%s: unknown configuration key \"%.64s\"", name,
                                  item->string ? item->string : "");
        else if (seen[found]++)
            status = cm_error_set(CM_ERR_FORMAT, "%s: configuration key \"%s\" given twice", name,
                                  fields[found].key);
        else
            status = read_field(&config, &fields[found], item, name);
    }
    cJSON_Delete(root);
    if (status != CM_OK) return status;
    if (cm_train_config_check(&config) != CM_OK)
        return cm_error_set(CM_ERR_FORMAT, "%s: %s", name, cm_error_detail());
    *out = config;
    return CM_OK;
}
