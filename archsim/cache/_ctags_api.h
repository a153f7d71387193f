/* The C API of archsim.cache._ctags (the compiled LRU tag array), for other extensions: a capsule
 * "archsim.cache._ctags._C_API" holding this struct.  The compiled host engine (archsim/dram/_chost.h) looks up
 * and fills the LLC's tags through it, so the tags a Python caller sees are the ones the engine changed. */
#ifndef ARCHSIM_CTAGS_API_H
#define ARCHSIM_CTAGS_API_H

#include <Python.h>
#include <stdint.h>

#define ARCHSIM_TAGS_CAPSULE "archsim.cache._ctags._C_API"

typedef struct {
    PyTypeObject *type; /* LRUTags */
    /* LRUTags.lookup(line, write): 1 hit, 0 miss */
    int (*lookup)(PyObject *tags, uint64_t line, int write);
    /* LRUTags.fill(line, dirty): 1 a victim (*vline, *vdirty), 0 none, -1 error set */
    int (*fill)(PyObject *tags, uint64_t line, int dirty, uint64_t *vline, int *vdirty);
} ArchsimTagsAPI;

#endif
