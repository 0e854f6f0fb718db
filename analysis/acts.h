/* analysis/acts.h — activations of a whole token set between two layers, memory-capped.
 *
 * A layer-major pass (analysis/lfwd.h) keeps every token's residual row between layer i and
 * layer i+1: rows × width float32. Up to cap bytes live in memory; a store larger than the
 * cap lives in a temporary file instead (mkstemp under $TMPDIR, else /tmp, unlinked at once,
 * so nothing is left behind whatever happens), read and written with pread/pwrite by row
 * ranges. cap 0 means no cap (always memory). The values round-trip bit for bit either way.
 *
 * Errors: VL_ENOMEM, VL_EIO naming the temporary file's directory; VL_EARG for a row range
 * outside the store. Not thread-safe.
 */
#ifndef VL_ACTS_H
#define VL_ACTS_H

#include "../core/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct acts acts;

int acts_new(acts **out, int64_t rows, int width, int64_t cap_bytes, vl_err *err);

/* Rows [row0, row0 + n) from src (n × width floats) / into dst. */
int acts_put(acts *a, int64_t row0, int64_t n, const float *src, vl_err *err);
int acts_get(const acts *a, int64_t row0, int64_t n, float *dst, vl_err *err);

/* 1 when the store is a temporary file (it exceeded the cap). */
int acts_spilled(const acts *a);

void acts_free(acts *a); /* NULL is a no-op */

#endif
