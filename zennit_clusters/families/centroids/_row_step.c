/*
 * The compiled k-means row step: one kernel takes each row of X from its scores through the top-two logits, the
 * label, the margins, the soft-min shares, the stabilised factors and the midpoint relevance, while the row is
 * still in L1; X is read once and R written once. Its torch twin is CentroidExplainer._forward_flat
 * (explainer.py, same folder); row_step.py decides which runs. The row operations come from
 * zennit_clusters/compiled (rows.h); the GIL is released while the kernel runs.
 */
#include "simd.h"

/* The pointers to one instruction set's row steps, for float and double. */
struct row_step_table {
    const char *name;
    int (*flat_explain_float)(const float *, const float *, const float *, const float *, const float *,
                              const float *, Py_ssize_t, Py_ssize_t, double, float, float, int64_t *, float *, float *, Py_ssize_t,
                              Py_ssize_t, Py_ssize_t, int);
    int (*flat_explain_double)(const double *, const double *, const double *, const double *, const double *,
                               const double *, Py_ssize_t, Py_ssize_t, double, double, double, int64_t *, double *, double *,
                               Py_ssize_t, Py_ssize_t, Py_ssize_t, int);
};

#define ISA_BODY "row_step_isa.h"
#define ISA_TABLE row_steps
#define ISA_CURRENT row_steps
static const struct row_step_table *row_steps;
#include "for_each_isa.h"

/* Arguments are raw addresses (checked by row_step.py), sizes and the thread count. */

static PyObject *py_flat_explain(PyObject *self, PyObject *args)
{
    int is_double, threads;
    unsigned long long x, origin, weight, bias, squares, centres, label, logits, relevance;
    Py_ssize_t stride, cluster, n, d, k;
    double beta, epsilon, relative;
    int status;
    if (!PyArg_ParseTuple(args, "pKKKKKKnndddKKKnnni", &is_double, &x, &origin, &weight, &bias, &squares, &centres,
                          &stride, &cluster, &beta, &epsilon, &relative, &label, &logits, &relevance, &n, &d, &k, &threads))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        status = row_steps->flat_explain_double((const double *)x, (const double *)origin, (const double *)weight,
                            (const double *)bias, (const double *)squares, (const double *)centres, stride, cluster, beta,
                            epsilon, relative, (int64_t *)label, (double *)logits, (double *)relevance, n, d, k, threads);
    else
        status = row_steps->flat_explain_float((const float *)x, (const float *)origin, (const float *)weight, (const float *)bias,
                           (const float *)squares, (const float *)centres, stride, cluster, beta, (float)epsilon, (float)relative,
                           (int64_t *)label, (float *)logits, (float *)relevance, n, d, k, threads);
    Py_END_ALLOW_THREADS
    if (status != 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"instruction_set", py_instruction_set, METH_VARARGS,
     "instruction_set([name]): the instruction set the row step runs ('avx512', 'avx2' or 'generic'); with a name "
     "('best' for the widest this CPU runs), switch to it first."},
    {"flat_explain", py_flat_explain, METH_VARARGS,
     "flat_explain(is_double, x, origin, weight, bias, squares, centres, stride, cluster, beta, epsilon, relative, label, "
     "logits, relevance, n, d, k, threads)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_row_step", "The compiled k-means row step of NEON.",
                                   -1, methods};

PyMODINIT_FUNC PyInit__row_step(void)
{
    row_steps = BEST_TABLE();
    return PyModule_Create(&module);
}
