// The multiply-add rate of one core for each instruction mix a prefill micro-kernel can be built from, all operands
// in L1, no memory traffic: what Java's kernels reach (F32 FMAs; int16 multiplies and adds, the Vector API's best
// integer route) against the instructions it cannot emit (vpdpwssd, vpdpbusd: llama.cpp's). Each kernel holds 16
// accumulators, as ours do, so that latency does not limit it. The figures are the ceiling of each route on this
// machine: docs/kernel-log.md "Session 22" and docs/speed-runs.md quote them.
// Usage: gcc -O2 -march=native -o target/mac-ceiling scripts/mac-ceiling.c && target/mac-ceiling
// (needs AVX-512 BW and VNNI, as the machine this project is measured on has.)
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define COLS 32 // one block of columns per call, as Int16Product.block ran (the int16 prefill product, sessions 7-46)
static int16_t weights16[8 * COLS], activations16[COLS * 128];
static int32_t weightPairs[8 * COLS];
static float weights32[8 * COLS], activations32[COLS * 32];
static int16_t sink16[16 * 32];
static float sink32[16 * 16];

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// groupKernel's mix: per column 2 activation loads, 8 broadcast weights, 16 FMAs (8 rows x 32 tokens)
__attribute__((noinline)) static void f32Fma(long reps) {
    for (long r = 0; r < reps; r++) {
        __m512 c[16];
        for (int i = 0; i < 16; i++) c[i] = _mm512_setzero_ps();
        for (int k = 0; k < COLS; k++) {
            __m512 x0 = _mm512_loadu_ps(activations32 + k * 32), x1 = _mm512_loadu_ps(activations32 + k * 32 + 16);
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                __m512 w = _mm512_set1_ps(weights32[i * COLS + k]);
                c[2 * i] = _mm512_fmadd_ps(x0, w, c[2 * i]);
                c[2 * i + 1] = _mm512_fmadd_ps(x1, w, c[2 * i + 1]);
            }
        }
        for (int i = 0; i < 16; i++) _mm512_storeu_ps(sink32 + (i % 16) * 16, c[i]);
    }
}

// Int16Product.block's mix (removed in session 47): per column 2 activation loads, 8 int16 weight broadcasts, 16 vpmullw + 16 vpaddw
// (8 rows x 64 tokens)
__attribute__((noinline)) static void int16MulAdd(long reps) {
    for (long r = 0; r < reps; r++) {
        __m512i c[16];
        for (int i = 0; i < 16; i++) c[i] = _mm512_setzero_si512();
        for (int k = 0; k < COLS; k++) {
            __m512i x0 = _mm512_loadu_si512(activations16 + k * 64), x1 = _mm512_loadu_si512(activations16 + k * 64 + 32);
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                __m512i w = _mm512_set1_epi16(weights16[i * COLS + k]);
                c[2 * i] = _mm512_add_epi16(c[2 * i], _mm512_mullo_epi16(x0, w));
                c[2 * i + 1] = _mm512_add_epi16(c[2 * i + 1], _mm512_mullo_epi16(x1, w));
            }
        }
        for (int i = 0; i < 16; i++) _mm512_storeu_si512(sink16 + i * 32, c[i]);
    }
}

// Four rows x 64 tokens, COLUMNS_PER_INT columns' weights per 32-bit broadcast (activations interleaved to match),
// per step 4 activation loads, 4 dword broadcasts and 16 updates of the accumulators by UPDATE(c, x, w)
#define FOUR_ROW_KERNEL(name, COLUMNS_PER_INT, UPDATE)                                                           \
    __attribute__((noinline)) static void name(long reps) {                                                    \
        for (long r = 0; r < reps; r++) {                                                                      \
            __m512i c[16];                                                                                     \
            for (int i = 0; i < 16; i++) c[i] = _mm512_setzero_si512();                                        \
            for (int k = 0; k < COLS; k += COLUMNS_PER_INT) {                                                  \
                __m512i x[4];                                                                                  \
                _Pragma("GCC unroll 4") for (int v = 0; v < 4; v++)                                            \
                    x[v] = _mm512_loadu_si512(activations16 + k * 128 / COLUMNS_PER_INT + 32 * v);             \
                _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {                                          \
                    __m512i w = _mm512_set1_epi32(weightPairs[i * COLS + k / COLUMNS_PER_INT]);                \
                    _Pragma("GCC unroll 4") for (int v = 0; v < 4; v++) c[4 * i + v] = UPDATE(c[4 * i + v], x[v], w); \
                }                                                                                              \
            }                                                                                                  \
            for (int i = 0; i < 16; i++) _mm512_storeu_si512(sink16 + i * 32, c[i]);                           \
        }                                                                                                      \
    }

// the int16 multiply and add on column pairs (what a different int16 product layout could do)
#define MUL_ADD_16(c, x, w) _mm512_add_epi16(c, _mm512_mullo_epi16(x, w))
FOUR_ROW_KERNEL(int16PairMulAdd, 2, MUL_ADD_16)
// vpdpwssd: int16 pairs summed into int32 lanes (what a Vector API "multiply and add adjacent" would give)
FOUR_ROW_KERNEL(vpdpwssd, 2, _mm512_dpwssd_epi32)
// vpdpbusd: unsigned x signed bytes, four per int32 lane (llama.cpp's Q4_0/Q8_0 kernels on x86)
#define DPBUSD(c, x, w) _mm512_dpbusd_epi32(c, w, x)
FOUR_ROW_KERNEL(vpdpbusd, 4, DPBUSD)

static void measure(const char *name, void (*kernel)(long), double macsPerCall) {
    long reps = 2000000;
    kernel(reps / 100);
    double t = seconds();
    kernel(reps);
    t = seconds() - t;
    printf("%-58s %6.1f G multiply-adds/s\n", name, reps * macsPerCall / t / 1e9);
}

int main(void) {
    for (int i = 0; i < 8 * COLS; i++) {
        weights16[i] = (int16_t) (i % 15 - 7);
        weightPairs[i] = (int32_t) ((uint32_t) i * 0x01030507u);
        weights32[i] = (float) (i % 15 - 7);
    }
    for (int i = 0; i < COLS * 128; i++) activations16[i] = (int16_t) (i % 200 - 100);
    for (int i = 0; i < COLS * 32; i++) activations32[i] = (float) (i % 200 - 100);
    measure("F32 FMA, 8 rows x 32 tokens (TileKernels.groupKernel)", f32Fma, COLS * 8 * 32);
    measure("int16 vpmullw + vpaddw, 8 rows x 64 tokens (Int16Product)", int16MulAdd, COLS * 8 * 64);
    measure("int16 vpmullw + vpaddw, column pairs per broadcast", int16PairMulAdd, COLS * 4 * 64);
    measure("vpdpwssd (not reachable from the Vector API)", vpdpwssd, COLS * 4 * 64);
    measure("vpdpbusd (llama.cpp; not reachable from the Vector API)", vpdpbusd, COLS * 4 * 64);
    return sink16[5] + (int) sink32[3] == 12345;
}
