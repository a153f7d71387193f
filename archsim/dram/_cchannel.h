/* Shared declarations of the _cchannel extension (one module built from several C files). */
#ifndef ARCHSIM_CCHANNEL_H
#define ARCHSIM_CCHANNEL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* _ctrace.c: parse_trace_block(text, pos[, lo, hi, max_cycle]) -> (records, pos, lines) */
PyObject *archsim_parse_trace_block(PyObject *module, PyObject *args);
extern const char archsim_parse_trace_block_doc[];

#endif
