// Intel ISA-L (Debian: libisal-dev): Reed–Solomon erasure coding and CRC32C.
#include <isa-l/erasure_code.h>
#include <isa-l/crc.h>
