/*
 * The kernels of _kernels.c for one instruction set. Included once per set, with
 *     VBYTES  the vector width in bytes,  ISA  the set's name;
 * defines kernels_<ISA>, the table of its kernels for float and double.
 */
typedef float XCAT(vfloat, ISA) __attribute__((vector_size(VBYTES), aligned(4)));
typedef double XCAT(vdouble, ISA) __attribute__((vector_size(VBYTES), aligned(8)));

#define T float
#define V XCAT(vfloat, ISA)
#define EXP expf
#define NAME(f) XCAT(XCAT(f, float), ISA)
#include "_kernels_typed.h"
#undef T
#undef V
#undef EXP
#undef NAME

#define T double
#define V XCAT(vdouble, ISA)
#define EXP exp
#define NAME(f) XCAT(XCAT(f, double), ISA)
#include "_kernels_typed.h"
#undef T
#undef V
#undef EXP
#undef NAME

static const struct kernel_table XCAT(kernels, ISA) = {
    XSTR(ISA),
    XCAT(centred_linear_float, ISA),
    XCAT(centred_linear_double, ISA),
    XCAT(centred_addcmul_float, ISA),
    XCAT(centred_addcmul_double, ISA),
    XCAT(flat_explain_float, ISA),
    XCAT(flat_explain_double, ISA),
};
