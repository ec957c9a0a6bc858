/* version.h: the version of the cm library and tool (the Makefile reads it for libcm.so and
 * cm.pc). 0.2: the network interface, nested configuration, row-block draws. */
#ifndef CM_VERSION_H
#define CM_VERSION_H

#define CM_VERSION "0.2.0"

#endif
