/* alloc/ggml_qstub.c — placeholder quantizers (all-zero blocks) until the real ones land. */
#include "ggml_int.h"
int ggf_q_iq2_xxs(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 66); return 0; }
int ggf_q_iq2_xs(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 74); return 0; }
int ggf_q_iq2_s(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 82); return 0; }
int ggf_q_iq3_xxs(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 98); return 0; }
int ggf_q_iq3_s(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 110); return 0; }
int ggf_q_iq1_s(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 50); return 0; }
int ggf_q_iq1_m(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 56); return 0; }
