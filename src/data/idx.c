/* idx.c: reader of IDX files (LeCun's MNIST format, also Fashion-MNIST's), gzip-compressed
 * (inflated through zlib, one or more members) or plain.
 *
 * Format: magic bytes 00 00 TT DD (TT = 0x08 unsigned bytes; DD dimensions, 1..3 here), DD
 * big-endian uint32 dimensions, then the product of the dimensions in bytes, nothing after.
 * Checked before trusting: the magic, the type and dimension count, zero dimensions, 64-bit
 * overflow of the product, CM_IMAGE_MAX_BYTES, truncation (for plain data and for gzip data
 * that cannot hold the promised size, before allocating), trailing bytes, damaged gzip data
 * (zlib checks each member's CRC and length). Inflation stops one byte after the promised
 * payload, so a small file can never make us inflate more. Not supported: other element types
 * (signed bytes, shorts, ints, floats, doubles), more than 3 dimensions, zlib-wrapped data.
 */
#include "cm/image.h"

#include <string.h>
#include <zlib.h>

#include "cm/alloc.h"
#include "cm/io.h"

#define IDX_MAX_DIMS 3
#define IDX_TYPE_UBYTE 0x08
/* Deflate's largest expansion: a 258-byte match in 2 bits is 1032 : 1; with the slack below,
 * gzip data of n bytes cannot inflate to more than IDX_GZIP_MAX_RATIO n + IDX_GZIP_SLACK. */
#define IDX_GZIP_MAX_RATIO 1032
#define IDX_GZIP_SLACK 1024
/* Compressed or plain input accepted from a file: the payload limit plus room for headers. */
#define IDX_MAX_FILE_BYTES (CM_IMAGE_MAX_BYTES + ((uint64_t)1 << 20))

/* The decoded bytes of an IDX image: straight from memory, or inflated member by member. */
typedef struct {
    const unsigned char *input;
    size_t size, used; /* plain: the next byte is input[used] */
    int gzip;
    z_stream z;
    int inflating;     /* inflateInit2 succeeded: inflateEnd is due */
    int member_ended;  /* the last member ended; more input must be a new member */
    int out_of_memory; /* an allocation for zlib failed */
    const char *name;
} idx_stream;

static voidpf zlib_alloc(voidpf opaque, uInt items, uInt size) {
    void *memory = cm_malloc(items, size);
    if (!memory) ((idx_stream *)opaque)->out_of_memory = 1;
    return memory;
}

static void zlib_free(voidpf opaque, voidpf address) { cm_free(address); }

static cm_status stream_open(idx_stream *s, const unsigned char *bytes, size_t size,
                             const char *name) {
    memset(s, 0, sizeof *s);
    s->input = bytes;
    s->size = size;
    s->name = name;
    s->gzip = size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
    if (!s->gzip) return CM_OK;
    if (size > UINT32_MAX)
        return cm_error_set(CM_ERR_FORMAT, "%s: %zu bytes of gzip data, over the limit", name,
                            size);
    s->z.zalloc = zlib_alloc;
    s->z.zfree = zlib_free;
    s->z.opaque = s;
    s->z.next_in = (Bytef *)bytes; /* zlib's API is not const-correct; it never writes input */
    s->z.avail_in = (uInt)size;
    if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) /* 16: gzip wrapper only */
        return cm_error_set(CM_ERR_NOMEM, "%s: cannot start zlib", name);
    s->inflating = 1;
    return CM_OK;
}

static void stream_close(idx_stream *s) {
    if (s->inflating) inflateEnd(&s->z);
    s->inflating = 0;
}

/* Inflate up to n bytes into dst; *got < n only at the clean end of the last member. */
static cm_status inflate_some(idx_stream *s, unsigned char *dst, size_t n, size_t *got) {
    s->z.next_out = dst;
    s->z.avail_out = (uInt)n;
    while (s->z.avail_out > 0) {
        if (s->member_ended) {
            if (s->z.avail_in == 0) break;
            if (s->z.avail_in < 2 || s->z.next_in[0] != 0x1f || s->z.next_in[1] != 0x8b)
                return cm_error_set(CM_ERR_FORMAT, "%s: %u bytes after the gzip data are not "
                                    "another gzip member (trailing bytes)", s->name,
                                    s->z.avail_in);
            inflateReset(&s->z);
            s->member_ended = 0;
        }
        int rc = inflate(&s->z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) s->member_ended = 1;
        else if (rc == Z_MEM_ERROR || s->out_of_memory)
            return cm_error_set(CM_ERR_NOMEM, "%s: no memory for zlib", s->name);
        else if (rc == Z_BUF_ERROR) /* no progress: the input ends inside a member */
            return cm_error_set(CM_ERR_FORMAT, "%s: truncated gzip data (the stream ends early)",
                                s->name);
        else if (rc != Z_OK)
            return cm_error_set(CM_ERR_FORMAT, "%s: damaged gzip data (%s)", s->name,
                                s->z.msg ? s->z.msg : "zlib error");
    }
    *got = n - s->z.avail_out;
    return CM_OK;
}

/* Up to n decoded bytes into dst (n < 2^32); *got < n only at the end of the data. */
static cm_status stream_read(idx_stream *s, unsigned char *dst, size_t n, size_t *got) {
    if (s->gzip) return inflate_some(s, dst, n, got);
    size_t left = s->size - s->used, take = n < left ? n : left;
    if (take) memcpy(dst, s->input + s->used, take);
    s->used += take;
    *got = take;
    return CM_OK;
}

static uint32_t load_be32(const unsigned char *bytes) {
    return (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 | (uint32_t)bytes[2] << 8 | bytes[3];
}

static const char *element_type_name(int type) {
    switch (type) {
    case 0x09: return "signed bytes";
    case 0x0b: return "16-bit integers";
    case 0x0c: return "32-bit integers";
    case 0x0d: return "float32";
    case 0x0e: return "float64";
    default: return NULL;
    }
}

/* The magic: 00 00, the element type, the number of dimensions. */
static cm_status check_magic(size_t *ndim, const unsigned char magic[4], const char *name) {
    if (magic[0] != 0 || magic[1] != 0)
        return cm_error_set(CM_ERR_FORMAT, "%s: not an IDX file (magic %02x %02x %02x %02x; IDX "
                            "begins 00 00, gzip 1f 8b)", name, magic[0], magic[1], magic[2],
                            magic[3]);
    const char *type = element_type_name(magic[2]);
    if (type)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: IDX of %s (magic 0x0000%02x%02x; only "
                            "unsigned bytes, type 0x08)", name, type, magic[2], magic[3]);
    if (magic[2] != IDX_TYPE_UBYTE)
        return cm_error_set(CM_ERR_FORMAT, "%s: unknown IDX element type 0x%02x", name, magic[2]);
    if (magic[3] == 0)
        return cm_error_set(CM_ERR_FORMAT, "%s: IDX magic 0x00000800 declares no dimensions", name);
    if (magic[3] > IDX_MAX_DIMS)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: IDX with %d dimensions (only 1 for labels, "
                            "magic 0x00000801, to 3 for images, 0x00000803)", name, magic[3]);
    *ndim = magic[3];
    return CM_OK;
}

/* Magic and dimensions; *payload receives the product, checked against the limits. */
static cm_status read_header(cm_idx_array *a, uint64_t *payload, idx_stream *s) {
    unsigned char header[4 + 4 * IDX_MAX_DIMS];
    size_t got = 0;
    CM_TRY(stream_read(s, header, 4, &got));
    if (got < 4)
        return cm_error_set(CM_ERR_FORMAT, "%s: truncated: %zu bytes, shorter than the IDX magic",
                            s->name, got);
    CM_TRY(check_magic(&a->ndim, header, s->name));
    CM_TRY(stream_read(s, header + 4, 4 * a->ndim, &got));
    if (got < 4 * a->ndim)
        return cm_error_set(CM_ERR_FORMAT, "%s: truncated in the IDX header (%zu of %zu bytes of "
                            "dimensions)", s->name, got, 4 * a->ndim);
    uint64_t product = 1;
    for (size_t i = 0; i < IDX_MAX_DIMS; i++) a->shape[i] = 1;
    for (size_t i = 0; i < a->ndim; i++) {
        uint64_t dimension = load_be32(header + 4 + 4 * i);
        if (dimension == 0)
            return cm_error_set(CM_ERR_FORMAT, "%s: empty: IDX dimension %zu is 0", s->name, i);
        if (product > CM_IMAGE_MAX_BYTES / dimension)
            return cm_error_set(CM_ERR_FORMAT, "%s: IDX dimensions promise more than %llu bytes "
                                "(the limit)", s->name, (unsigned long long)CM_IMAGE_MAX_BYTES);
        product *= dimension;
        a->shape[i] = (size_t)dimension;
    }
    *payload = product;
    return CM_OK;
}

/* The payload, then nothing: refused before allocating when the input cannot hold it. */
static cm_status read_payload(cm_idx_array *a, uint64_t payload, idx_stream *s) {
    uint64_t most = s->gzip ? (uint64_t)s->size * IDX_GZIP_MAX_RATIO + IDX_GZIP_SLACK
                            : (uint64_t)(s->size - s->used);
    if (payload > most)
        return cm_error_set(CM_ERR_FORMAT, "%s: truncated: the IDX header promises %llu bytes, "
                            "the %s holds %s%llu", s->name, (unsigned long long)payload,
                            s->gzip ? "gzip data" : "file", s->gzip ? "at most " : "",
                            (unsigned long long)most);
    if (!s->gzip && payload < most)
        return cm_error_set(CM_ERR_FORMAT, "%s: the IDX header promises %llu bytes, the file "
                            "holds %llu (trailing bytes)", s->name, (unsigned long long)payload,
                            (unsigned long long)most);
    a->bytes = cm_malloc((size_t)payload, 1);
    if (!a->bytes)
        return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate %llu bytes", s->name,
                            (unsigned long long)payload);
    a->size = (size_t)payload;
    size_t got = 0;
    unsigned char extra;
    CM_TRY(stream_read(s, a->bytes, a->size, &got));
    if (got < a->size)
        return cm_error_set(CM_ERR_FORMAT, "%s: truncated: the IDX header promises %zu bytes, "
                            "the data holds %zu", s->name, a->size, got);
    CM_TRY(stream_read(s, &extra, 1, &got)); /* also checks the last gzip member's trailer */
    if (got)
        return cm_error_set(CM_ERR_FORMAT, "%s: more than the %zu bytes the IDX header promises "
                            "(trailing bytes)", s->name, a->size);
    return CM_OK;
}

cm_status cm_idx_parse(cm_idx_array *out, const void *bytes, size_t size, const char *name) {
    cm_idx_array a = {0};
    idx_stream s;
    uint64_t payload = 0;
    memset(out, 0, sizeof *out);
    if (!name) name = "(idx buffer)";
    cm_status status = stream_open(&s, bytes, size, name);
    if (status == CM_OK) status = read_header(&a, &payload, &s);
    if (status == CM_OK) status = read_payload(&a, payload, &s);
    stream_close(&s);
    if (status != CM_OK) {
        cm_idx_free(&a);
        return status;
    }
    *out = a;
    return CM_OK;
}

cm_status cm_idx_read(cm_idx_array *out, const char *path) {
    void *bytes = NULL;
    size_t size = 0;
    memset(out, 0, sizeof *out);
    CM_TRY(cm_file_read_all(&bytes, &size, path, IDX_MAX_FILE_BYTES));
    cm_status status = cm_idx_parse(out, bytes, size, path);
    cm_free(bytes);
    return status;
}

void cm_idx_free(cm_idx_array *array) {
    if (!array) return;
    cm_free(array->bytes);
    memset(array, 0, sizeof *array);
}
