/*
 * What every compiled kernel of zennit-clusters shares: Python's header, the inlining and naming macros, and the
 * block width of the score loops. The instruction-set dispatch is in for_each_isa.h and for_each_type.h.
 */
#ifndef ZENNIT_CLUSTERS_SIMD_H
#define ZENNIT_CLUSTERS_SIMD_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* the row functions are inlined into each kernel, so that they are compiled for its instruction set */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

#define SCORE_BLOCK 8 /* centres per pass over a row: independent accumulators hide the FMA latency */

#define CAT(a, b) a##_##b
#define XCAT(a, b) CAT(a, b)
#define STR(a) #a
#define XSTR(a) STR(a)
#endif
