/* alloc/ggml_qstub.c — placeholder quantizers (all-zero blocks) until the real ones land. */
#include "ggml_int.h"
int ggf_q_q4_0(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 18); return 0; }
int ggf_q_q4_1(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 20); return 0; }
int ggf_q_q5_0(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 22); return 0; }
int ggf_q_q5_1(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 24); return 0; }
int ggf_q_q8_0(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 34); return 0; }
int ggf_q_q2_K(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 84); return 0; }
int ggf_q_q3_K(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 110); return 0; }
int ggf_q_q4_K(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 144); return 0; }
int ggf_q_q5_K(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 176); return 0; }
int ggf_q_q6_K(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 210); return 0; }
int ggf_q_iq4_nl(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 18); return 0; }
int ggf_q_iq4_xs(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 136); return 0; }
int ggf_q_iq2_xxs(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 66); return 0; }
int ggf_q_iq2_xs(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 74); return 0; }
int ggf_q_iq2_s(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 82); return 0; }
int ggf_q_iq3_xxs(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 98); return 0; }
int ggf_q_iq3_s(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 110); return 0; }
int ggf_q_iq1_s(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 50); return 0; }
int ggf_q_iq1_m(const float *x, const float *w, uint8_t *b) { (void)x; (void)w; memset(b, 0, 56); return 0; }
