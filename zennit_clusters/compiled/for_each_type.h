/*
 * Included once per instruction set (see for_each_isa.h): compiles the header named by TYPED_BODY for float and
 * double, with  T  the scalar type,  V  a vector of T of the set's width,  EXP  the exp of T,  NAME(f)  the name
 * of f for this type and instruction set.
 */
typedef float XCAT(vfloat, ISA) __attribute__((vector_size(VBYTES), aligned(4)));
typedef double XCAT(vdouble, ISA) __attribute__((vector_size(VBYTES), aligned(8)));

#define T float
#define V XCAT(vfloat, ISA)
#define EXP expf
#define NAME(f) XCAT(XCAT(f, float), ISA)
#include TYPED_BODY
#undef T
#undef V
#undef EXP
#undef NAME

#define T double
#define V XCAT(vdouble, ISA)
#define EXP exp
#define NAME(f) XCAT(XCAT(f, double), ISA)
#include TYPED_BODY
#undef T
#undef V
#undef EXP
#undef NAME

