/*
 * Fused CPU kernels for the two O(N K D) steps of the closed-form NEON explainer.
 *
 * Both fold the centring x - centre into the product, so X is read once per step and nothing of X's size
 * is materialised but the result:
 *
 *     centred_linear:   out[n, m] = sum_i (x[n, i] - centre[i]) weight[m, i] + bias[m]
 *     centred_addcmul:  out[n, i] = sum_m g[n, m] first[m, i] + value (x[n, i] - centre[i]) sum_m g[n, m] second[m, i]
 *
 * The equations that use them (scores and the midpoint rule) live in zennit_clusters/functional.py; the
 * torch expressions of the same two operations, and the checks that decide when these kernels may run,
 * are in zennit_clusters/kernels.py. Matrix libraries are slow on these shapes (an inner or outer dimension
 * of K ~ 10), and here each row stays in L1 while it is used. Rows are split over OpenMP threads; the GIL
 * is released while a kernel runs.
 */
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

/* The pointers to one instruction set's kernels, for float and double. */
struct kernel_table {
    const char *name;
    void (*centred_linear_float)(const float *, const float *, const float *, const float *, float *, Py_ssize_t,
                                 Py_ssize_t, Py_ssize_t, int);
    void (*centred_linear_double)(const double *, const double *, const double *, const double *, double *,
                                  Py_ssize_t, Py_ssize_t, Py_ssize_t, int);
    void (*centred_addcmul_float)(const float *, const float *, const float *, const float *, const float *, float,
                                  float *, Py_ssize_t, Py_ssize_t, Py_ssize_t, int);
    void (*centred_addcmul_double)(const double *, const double *, const double *, const double *, const double *,
                                   double, double *, Py_ssize_t, Py_ssize_t, Py_ssize_t, int);
    int (*flat_explain_float)(const float *, const float *, const float *, const float *, const float *,
                              const float *, Py_ssize_t, double, float, int64_t *, float *, float *, Py_ssize_t,
                              Py_ssize_t, Py_ssize_t, int);
    int (*flat_explain_double)(const double *, const double *, const double *, const double *, const double *,
                               const double *, Py_ssize_t, double, double, int64_t *, double *, double *,
                               Py_ssize_t, Py_ssize_t, Py_ssize_t, int);
};

/* Each instruction set gets the kernels with vectors of its register width (GCC/Clang vector extensions;
 * a wider vector than the registers compiles to slow code): AVX-512 64 bytes, AVX2 32, anything else 16. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define X86_DISPATCH 1
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4")
#define VBYTES 64
#define ISA avx512
#include "_kernels_isa.h"
#undef VBYTES
#undef ISA
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
#define VBYTES 32
#define ISA avx2
#include "_kernels_isa.h"
#undef VBYTES
#undef ISA
#pragma GCC pop_options
#endif

#define VBYTES 16
#define ISA generic
#include "_kernels_isa.h"
#undef VBYTES
#undef ISA

static const struct kernel_table *kernels = &kernels_generic;

/* The widest instruction set this CPU runs. */
static const struct kernel_table *best_kernels(void)
{
#ifdef X86_DISPATCH
    /* exactly the feature sets the kernels were compiled for (virtual machines may hide single features) */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4"))
        return &kernels_avx512;
    if (__builtin_cpu_supports("x86-64-v3"))
        return &kernels_avx2;
#endif
    return &kernels_generic;
}

/* Arguments are raw addresses (checked by zennit_clusters/kernels.py), sizes and the thread count. */

static PyObject *py_centred_linear(PyObject *self, PyObject *args)
{
    int is_double, threads;
    unsigned long long x, centre, weight, bias, out;
    Py_ssize_t n, d, k;
    if (!PyArg_ParseTuple(args, "pKKKKKnnni", &is_double, &x, &centre, &weight, &bias, &out, &n, &d, &k,
                          &threads))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        kernels->centred_linear_double((const double *)x, (const double *)centre, (const double *)weight, (const double *)bias,
                      (double *)out, n, d, k, threads);
    else
        kernels->centred_linear_float((const float *)x, (const float *)centre, (const float *)weight, (const float *)bias,
                     (float *)out, n, d, k, threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_centred_addcmul(PyObject *self, PyObject *args)
{
    int is_double, threads;
    unsigned long long x, centre, g, first, second, out;
    double value;
    Py_ssize_t n, d, k;
    if (!PyArg_ParseTuple(args, "pKKKKKdKnnni", &is_double, &x, &centre, &g, &first, &second, &value, &out, &n,
                          &d, &k, &threads))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        kernels->centred_addcmul_double((const double *)x, (const double *)centre, (const double *)g, (const double *)first,
                       (const double *)second, value, (double *)out, n, d, k, threads);
    else
        kernels->centred_addcmul_float((const float *)x, (const float *)centre, (const float *)g, (const float *)first,
                      (const float *)second, (float)value, (float *)out, n, d, k, threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_flat_explain(PyObject *self, PyObject *args)
{
    int is_double, threads;
    unsigned long long x, centre, weight, bias, squares, centres, label, logits, relevance;
    Py_ssize_t cluster, n, d, k;
    double beta, epsilon;
    int status;
    if (!PyArg_ParseTuple(args, "pKKKKKKnddKKKnnni", &is_double, &x, &centre, &weight, &bias, &squares, &centres,
                          &cluster, &beta, &epsilon, &label, &logits, &relevance, &n, &d, &k, &threads))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        status = kernels->flat_explain_double((const double *)x, (const double *)centre, (const double *)weight,
                            (const double *)bias, (const double *)squares, (const double *)centres, cluster, beta,
                            epsilon, (int64_t *)label, (double *)logits, (double *)relevance, n, d, k, threads);
    else
        status = kernels->flat_explain_float((const float *)x, (const float *)centre, (const float *)weight, (const float *)bias,
                           (const float *)squares, (const float *)centres, cluster, beta, (float)epsilon,
                           (int64_t *)label, (float *)logits, (float *)relevance, n, d, k, threads);
    Py_END_ALLOW_THREADS
    if (status != 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *py_instruction_set(PyObject *self, PyObject *args)
{
    const char *name = NULL;
    if (!PyArg_ParseTuple(args, "|s", &name))
        return NULL;
    if (name != NULL) {
        const struct kernel_table *best = best_kernels();
        const struct kernel_table *wanted = NULL;
#ifdef X86_DISPATCH
        if (strcmp(name, "avx512") == 0 && best == &kernels_avx512)
            wanted = &kernels_avx512;
        if (strcmp(name, "avx2") == 0 && best != &kernels_generic)
            wanted = &kernels_avx2;
#endif
        if (strcmp(name, "generic") == 0)
            wanted = &kernels_generic;
        if (strcmp(name, "best") == 0)
            wanted = best;
        if (wanted == NULL)
            return PyErr_Format(PyExc_ValueError, "instruction set %s is not available on this CPU (best: %s)", name,
                                best->name);
        kernels = wanted;
    }
    return PyUnicode_FromString(kernels->name);
}

static PyMethodDef methods[] = {
    {"instruction_set", py_instruction_set, METH_VARARGS,
     "instruction_set([name]): the instruction set the kernels run ('avx512', 'avx2' or 'generic'); with a name "
     "('best' for the widest this CPU runs), switch to it first."},
    {"centred_linear", py_centred_linear, METH_VARARGS,
     "centred_linear(is_double, x, centre, weight, bias, out, n, d, k, threads)"},
    {"centred_addcmul", py_centred_addcmul, METH_VARARGS,
     "centred_addcmul(is_double, x, centre, g, first, second, value, out, n, d, k, threads)"},
    {"flat_explain", py_flat_explain, METH_VARARGS,
     "flat_explain(is_double, x, centre, weight, bias, squares, centres, cluster, beta, epsilon, label, logits, "
     "relevance, n, d, k, threads)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", "Fused CPU kernels of the NEON explainer.",
                                   -1, methods};

PyMODINIT_FUNC PyInit__kernels(void)
{
    kernels = best_kernels();
    return PyModule_Create(&module);
}
