/*
 * The compiled CPU primitives of zennit-clusters: the two O(N K D) operations of the closed-form explainers,
 * centred_linear (scores) and centred_addcmul (midpoint relevance), with the centring folded into the product so
 * that X is read once per step and nothing of X's size is materialised but the result. The equations that use
 * them live in zennit_clusters/equations.py; the torch expressions of the same operations, and the checks that
 * decide when these may run, are in zennit_clusters/compiled/__init__.py. Matrix libraries are slow on these
 * shapes (an inner or outer dimension of K ~ 10), and here each row stays in L1 while it is used. The GIL is
 * released while a kernel runs. No model family is compiled here: a family's fused kernels live in its folder.
 */
#include "simd.h"

/* The pointers to one instruction set's primitives, for float and double. */
struct primitive_table {
    const char *name;
    void (*centred_linear_float)(const float *, const float *, const float *, const float *, float *, Py_ssize_t,
                                 Py_ssize_t, Py_ssize_t, int);
    void (*centred_linear_double)(const double *, const double *, const double *, const double *, double *,
                                  Py_ssize_t, Py_ssize_t, Py_ssize_t, int);
    void (*centred_addcmul_float)(const float *, const float *, const float *, const float *, const float *, float,
                                  float *, Py_ssize_t, Py_ssize_t, Py_ssize_t, int);
    void (*centred_addcmul_double)(const double *, const double *, const double *, const double *, const double *,
                                   double, double *, Py_ssize_t, Py_ssize_t, Py_ssize_t, int);
};

#define ISA_BODY "primitives_isa.h"
#define ISA_TABLE primitives
#define ISA_CURRENT primitives
static const struct primitive_table *primitives;
#include "for_each_isa.h"

/* Arguments are raw addresses (checked by zennit_clusters/compiled/__init__.py), sizes and the thread count. */

static PyObject *py_centred_linear(PyObject *self, PyObject *args)
{
    int is_double, threads;
    unsigned long long x, origin, weight, bias, out;
    Py_ssize_t n, d, k;
    if (!PyArg_ParseTuple(args, "pKKKKKnnni", &is_double, &x, &origin, &weight, &bias, &out, &n, &d, &k,
                          &threads))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        primitives->centred_linear_double((const double *)x, (const double *)origin, (const double *)weight, (const double *)bias,
                      (double *)out, n, d, k, threads);
    else
        primitives->centred_linear_float((const float *)x, (const float *)origin, (const float *)weight, (const float *)bias,
                     (float *)out, n, d, k, threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_centred_addcmul(PyObject *self, PyObject *args)
{
    int is_double, threads;
    unsigned long long x, origin, g, first, second, out;
    double value;
    Py_ssize_t n, d, k;
    if (!PyArg_ParseTuple(args, "pKKKKKdKnnni", &is_double, &x, &origin, &g, &first, &second, &value, &out, &n,
                          &d, &k, &threads))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        primitives->centred_addcmul_double((const double *)x, (const double *)origin, (const double *)g, (const double *)first,
                       (const double *)second, value, (double *)out, n, d, k, threads);
    else
        primitives->centred_addcmul_float((const float *)x, (const float *)origin, (const float *)g, (const float *)first,
                      (const float *)second, (float)value, (float *)out, n, d, k, threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"instruction_set", py_instruction_set, METH_VARARGS,
     "instruction_set([name]): the instruction set the primitives run ('avx512', 'avx2' or 'generic'); with a name "
     "('best' for the widest this CPU runs), switch to it first."},
    {"centred_linear", py_centred_linear, METH_VARARGS,
     "centred_linear(is_double, x, origin, weight, bias, out, n, d, k, threads)"},
    {"centred_addcmul", py_centred_addcmul, METH_VARARGS,
     "centred_addcmul(is_double, x, origin, g, first, second, value, out, n, d, k, threads)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cpu", "Compiled CPU primitives of the NEON explainers.",
                                   -1, methods};

PyMODINIT_FUNC PyInit__cpu(void)
{
    primitives = BEST_TABLE();
    return PyModule_Create(&module);
}
