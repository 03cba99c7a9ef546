/*
 * Compiles the header named by ISA_BODY once per instruction set, with
 *     VBYTES  the vector width in bytes,  ISA  the set's name (avx512, avx2, generic).
 * Each instruction set gets vectors of its register width (GCC/Clang vector extensions; a wider vector than the
 * registers compiles to slow code): AVX-512 64 bytes, AVX2 32, anything else 16. ISA_BODY defines a table
 * XCAT(ISA_TABLE, ISA) of its kernels (a struct whose first member is the name); BEST_TABLE() is the widest this
 * CPU runs, and ISA_SELECT_FUNCTION defines the module's instruction_set([name]) on the pointer ISA_CURRENT.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define X86_DISPATCH 1
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4")
#define VBYTES 64
#define ISA avx512
#include ISA_BODY
#undef VBYTES
#undef ISA
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
#define VBYTES 32
#define ISA avx2
#include ISA_BODY
#undef VBYTES
#undef ISA
#pragma GCC pop_options
#endif

#define VBYTES 16
#define ISA generic
#include ISA_BODY
#undef VBYTES
#undef ISA

#ifdef X86_DISPATCH
/* exactly the feature sets the kernels were compiled for (virtual machines may hide single features) */
#define BEST_TABLE()                                                                                                \
    (__builtin_cpu_init(), __builtin_cpu_supports("x86-64-v4")   ? &XCAT(ISA_TABLE, avx512)                          \
                           : __builtin_cpu_supports("x86-64-v3") ? &XCAT(ISA_TABLE, avx2)                            \
                                                                 : &XCAT(ISA_TABLE, generic))
#else
#define BEST_TABLE() (&XCAT(ISA_TABLE, generic))
#endif

/* instruction_set([name]): the set the kernels run; with a name ('best' for the widest), switch to it first. */
static PyObject *py_instruction_set(PyObject *self, PyObject *args)
{
    const char *name = NULL;
    if (!PyArg_ParseTuple(args, "|s", &name))
        return NULL;
    if (name != NULL) {
        const void *best = BEST_TABLE();
        const void *wanted = NULL;
#ifdef X86_DISPATCH
        if (strcmp(name, "avx512") == 0 && best == &XCAT(ISA_TABLE, avx512))
            wanted = &XCAT(ISA_TABLE, avx512);
        if (strcmp(name, "avx2") == 0 && best != &XCAT(ISA_TABLE, generic))
            wanted = &XCAT(ISA_TABLE, avx2);
#endif
        if (strcmp(name, "generic") == 0)
            wanted = &XCAT(ISA_TABLE, generic);
        if (strcmp(name, "best") == 0)
            wanted = best;
        if (wanted == NULL)
            return PyErr_Format(PyExc_ValueError, "instruction set %s is not available on this CPU (best: %s)", name,
                                *(const char *const *)best);
        ISA_CURRENT = wanted;
    }
    return PyUnicode_FromString(ISA_CURRENT->name);
}
