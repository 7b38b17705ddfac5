/* The structure a member is embedded in. */
#pragma once
#include <stddef.h>

#define container_of(ptr, type, member) \
	((type *)((char *)(1 ? (ptr) : &((type *)0)->member) - offsetof(type, member)))
