// The header is the product here: this target exists so that the Swift implementation
// (Sources/NaturalGradientC) compiles against the exact struct layouts and constants C
// callers see. Including it once checks that it compiles as plain C.
#include "naturalgradient.h"
