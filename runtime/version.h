#ifndef SV_VERSION_H
#define SV_VERSION_H
#define SHORTV_VERSION "0.1.0"
#endif
