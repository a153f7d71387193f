/*
 * _ctags: the LRU tag array of archsim/cache/set_assoc.py (SetAssocCache), compiled (issue #15).
 *
 * The Python class stays the reference; this type has the same interface (lookup, contains, fill, invalidate,
 * set_of, stats, the counters and the geometry attributes) and gives the same answers for the same calls:
 * a set is the Python dict's insertion order kept as an array, least recently used first, so a hit moves the
 * line to the end, a fill of a line held moves it to the end and ORs its dirty bit, a fill of a new line into
 * a full set evicts the first.  The set index is the same modulo or XOR fold of the line number.  Lines are
 * integers in [0, 2**64); a set's ways are allocated the first time a line is filled into it (as the
 * reference creates a set's dict), so memory follows the sets touched.
 * archsim.cache.policies.make_tags returns it for policy lru unless ARCHSIM_HOST_ENGINE=python.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_ctags_api.h"

typedef uint64_t u64;

typedef struct {
    u64 *line;         /* ways entries, least recently used first */
    unsigned char *dirty;
    int n;             /* lines held */
} Set;

typedef struct {
    PyObject_HEAD
    long long line_bytes;
    int line_shift;
    int ways;
    u64 nsets;
    int xor_index;
    long long hits, misses, evictions, dirty_evictions;
    Set *sets;         /* nsets entries; a set's arrays are NULL until its first fill */
} LRUTags;

static inline u64 set_index(LRUTags *t, u64 line)
{
    u64 n = t->nsets;
    if (n == 1)
        return 0;
    if (t->xor_index) {
        u64 h = 0;
        while (line) {
            h ^= line;
            line /= n;
        }
        return h % n;
    }
    return line % n;
}

static int get_line(PyObject *o, u64 *out)
{
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = (u64)v;
    return 0;
}

/* index of line in set s, or -1 */
static inline int find(LRUTags *t, Set *s, u64 line)
{
    (void)t;
    for (int i = s->n - 1; i >= 0; i--) /* recently used lines are at the end */
        if (s->line[i] == line)
            return i;
    return -1;
}

/* move entry i to the end (most recently used) with dirty bit d */
static inline void to_end(Set *s, int i, unsigned char d)
{
    u64 l = s->line[i];
    int last = s->n - 1;
    if (i != last) {
        memmove(s->line + i, s->line + i + 1, (size_t)(last - i) * sizeof(u64));
        memmove(s->dirty + i, s->dirty + i + 1, (size_t)(last - i));
        s->line[last] = l;
    }
    s->dirty[last] = d;
}

static void LRUTags_dealloc(LRUTags *t)
{
    if (t->sets) {
        for (u64 i = 0; i < t->nsets; i++) {
            PyMem_Free(t->sets[i].line);
            PyMem_Free(t->sets[i].dirty);
        }
        PyMem_Free(t->sets);
    }
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static int LRUTags_init(LRUTags *t, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"size_bytes", "ways", "line_bytes", "index", NULL};
    long long size_bytes, ways, line_bytes = 64;
    const char *index = "modulo";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LL|Ls", kwlist, &size_bytes, &ways, &line_bytes, &index))
        return -1;
    if (line_bytes <= 0 || (line_bytes & (line_bytes - 1))) {
        PyErr_Format(PyExc_ValueError, "line_bytes must be a power of two, got %lld", line_bytes);
        return -1;
    }
    if (ways <= 0) {
        PyErr_Format(PyExc_ValueError, "ways must be positive, got %lld", ways);
        return -1;
    }
    long long lines = size_bytes >= 0 ? size_bytes / line_bytes : -((-size_bytes + line_bytes - 1) / line_bytes);
    if (lines < ways || lines % ways) {
        PyErr_Format(PyExc_ValueError, "size %lld B is not a whole number of %lld-way sets of %lld B lines",
                     size_bytes, ways, line_bytes);
        return -1;
    }
    if (strcmp(index, "modulo") != 0 && strcmp(index, "xor") != 0) {
        PyErr_Format(PyExc_ValueError, "index must be modulo or xor, got '%s'", index);
        return -1;
    }
    if (ways > (1 << 20)) {
        PyErr_SetString(PyExc_ValueError, "ways: too many for the compiled tag array");
        return -1;
    }
    t->line_bytes = line_bytes;
    int shift = 0;
    while ((1LL << shift) < line_bytes)
        shift++;
    t->line_shift = shift;
    t->ways = (int)ways;
    t->nsets = (u64)(lines / ways);
    t->xor_index = strcmp(index, "xor") == 0;
    t->hits = t->misses = t->evictions = t->dirty_evictions = 0;
    if (t->sets) {
        PyErr_SetString(PyExc_RuntimeError, "LRUTags initialised twice");
        return -1;
    }
    t->sets = PyMem_Calloc((size_t)t->nsets, sizeof(Set));
    if (!t->sets) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* the line and the optional flag (positional or by keyword `name`) of lookup and fill */
static int line_flag(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *name, u64 *line,
                     int *flag)
{
    PyObject *f = NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs < 1 || nargs + nkw > 2) {
        PyErr_Format(PyExc_TypeError, "expected (line, %s=False)", name);
        return -1;
    }
    if (nargs == 2)
        f = args[1];
    if (nkw == 1) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0))
            || PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), name) != 0) {
            PyErr_Format(PyExc_TypeError, "unexpected keyword argument (expected %s)", name);
            return -1;
        }
        f = args[1];
    }
    if (get_line(args[0], line) < 0)
        return -1;
    *flag = 0;
    if (f && (*flag = PyObject_IsTrue(f)) < 0)
        return -1;
    return 0;
}

/* the lookup of `line` (a write sets its dirty bit on a hit): 1 hit, 0 miss (C API: tags_lookup) */
static int tags_lookup(PyObject *self, u64 line, int write)
{
    LRUTags *t = (LRUTags *)self;
    Set *s = &t->sets[set_index(t, line)];
    int i = s->line ? find(t, s, line) : -1;
    if (i >= 0) {
        to_end(s, i, (unsigned char)(s->dirty[i] | write));
        t->hits++;
        return 1;
    }
    t->misses++;
    return 0;
}

static PyObject *LRUTags_lookup(LRUTags *t, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    u64 line;
    int write;
    if (line_flag(args, nargs, kwnames, "write", &line, &write) < 0)
        return NULL;
    if (tags_lookup((PyObject *)t, line, write))
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

static PyObject *LRUTags_contains(LRUTags *t, PyObject *arg)
{
    u64 line;
    if (get_line(arg, &line) < 0)
        return NULL;
    Set *s = &t->sets[set_index(t, line)];
    if (s->line && find(t, s, line) >= 0)
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* fill `line` (dirty ORed into a line held): 1 with the evicted line and its dirty bit in *vline, *vdirty,
 * 0 without a victim, -1 out of memory (C API: tags_fill) */
static int tags_fill(PyObject *self, u64 line, int dirty, u64 *vline, int *vdirty)
{
    LRUTags *t = (LRUTags *)self;
    Set *s = &t->sets[set_index(t, line)];
    if (!s->line) {
        s->line = PyMem_Malloc((size_t)t->ways * sizeof(u64));
        s->dirty = PyMem_Malloc((size_t)t->ways);
        if (!s->line || !s->dirty) {
            PyMem_Free(s->line);
            PyMem_Free(s->dirty);
            s->line = NULL;
            s->dirty = NULL;
            PyErr_NoMemory();
            return -1;
        }
        s->n = 0;
    }
    int i = find(t, s, line);
    if (i >= 0) {
        to_end(s, i, (unsigned char)(s->dirty[i] | dirty));
        return 0;
    }
    int evicted = 0;
    if (s->n >= t->ways) {
        *vline = s->line[0];
        *vdirty = s->dirty[0];
        evicted = 1;
        memmove(s->line, s->line + 1, (size_t)(s->n - 1) * sizeof(u64));
        memmove(s->dirty, s->dirty + 1, (size_t)(s->n - 1));
        s->n--;
        t->evictions++;
        if (*vdirty)
            t->dirty_evictions++;
    }
    s->line[s->n] = line;
    s->dirty[s->n] = (unsigned char)dirty;
    s->n++;
    return evicted;
}

static PyObject *LRUTags_fill(LRUTags *t, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    u64 line, vline = 0;
    int dirty, vdirty = 0;
    if (line_flag(args, nargs, kwnames, "dirty", &line, &dirty) < 0)
        return NULL;
    int rc = tags_fill((PyObject *)t, line, dirty, &vline, &vdirty);
    if (rc < 0)
        return NULL;
    if (rc)
        return Py_BuildValue("(KO)", (unsigned long long)vline, vdirty ? Py_True : Py_False);
    Py_RETURN_NONE;
}

static PyObject *LRUTags_invalidate(LRUTags *t, PyObject *arg)
{
    u64 line;
    if (get_line(arg, &line) < 0)
        return NULL;
    Set *s = &t->sets[set_index(t, line)];
    int i = s->line ? find(t, s, line) : -1;
    if (i < 0)
        Py_RETURN_NONE;
    int d = s->dirty[i];
    memmove(s->line + i, s->line + i + 1, (size_t)(s->n - 1 - i) * sizeof(u64));
    memmove(s->dirty + i, s->dirty + i + 1, (size_t)(s->n - 1 - i));
    s->n--;
    return Py_BuildValue("(KO)", (unsigned long long)line, d ? Py_True : Py_False);
}

static PyObject *LRUTags_set_of(LRUTags *t, PyObject *arg)
{
    u64 line;
    if (get_line(arg, &line) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(set_index(t, line));
}

static PyObject *LRUTags_stats(LRUTags *t, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{sLsLsLsL}", "hits", t->hits, "misses", t->misses, "evictions", t->evictions,
                         "dirty_evictions", t->dirty_evictions);
}

static PyObject *LRUTags_lines(LRUTags *t, PyObject *arg)
{
    /* the lines of one set, least recently used first, with their dirty bits (tests) */
    u64 i;
    if (get_line(arg, &i) < 0)
        return NULL;
    if (i >= t->nsets) {
        PyErr_SetString(PyExc_IndexError, "set index out of range");
        return NULL;
    }
    Set *s = &t->sets[i];
    PyObject *out = PyList_New(0);
    if (!out)
        return NULL;
    for (int k = 0; s->line && k < s->n; k++) {
        PyObject *e = Py_BuildValue("(KO)", (unsigned long long)s->line[k], s->dirty[k] ? Py_True : Py_False);
        if (!e || PyList_Append(out, e) < 0) {
            Py_XDECREF(e);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(e);
    }
    return out;
}

static PyObject *get_capacity(LRUTags *t, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(t->nsets * (u64)t->ways);
}

static PyObject *get_nsets(LRUTags *t, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(t->nsets);
}

static PyObject *get_xor(LRUTags *t, void *Py_UNUSED(c))
{
    return PyBool_FromLong(t->xor_index);
}

#define I64_MEMBER(name) {#name, T_LONGLONG, offsetof(LRUTags, name), 0, NULL}

#include <structmember.h>

static PyMemberDef LRUTags_members[] = {
    {"line_bytes", T_LONGLONG, offsetof(LRUTags, line_bytes), READONLY, NULL},
    {"line_shift", T_INT, offsetof(LRUTags, line_shift), READONLY, NULL},
    {"ways", T_INT, offsetof(LRUTags, ways), READONLY, NULL},
    I64_MEMBER(hits),
    I64_MEMBER(misses),
    I64_MEMBER(evictions),
    I64_MEMBER(dirty_evictions),
    {NULL, 0, 0, 0, NULL},
};

static PyObject *get_policy(LRUTags *Py_UNUSED(t), void *Py_UNUSED(c))
{
    return PyUnicode_FromString("lru");
}

static PyGetSetDef LRUTags_getset[] = {
    {"policy", (getter)get_policy, NULL, "the replacement policy's name", NULL},
    {"capacity_lines", (getter)get_capacity, NULL, "sets x ways", NULL},
    {"nsets", (getter)get_nsets, NULL, "number of sets", NULL},
    {"xor_index", (getter)get_xor, NULL, "XOR-folded set index", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef LRUTags_methods[] = {
    {"lookup", (PyCFunction)(void (*)(void))LRUTags_lookup, METH_FASTCALL | METH_KEYWORDS,
     "Whether line is present; a hit makes it most recently used (and dirty on a write)."},
    {"contains", (PyCFunction)LRUTags_contains, METH_O, "Presence without touching replacement state."},
    {"fill", (PyCFunction)(void (*)(void))LRUTags_fill, METH_FASTCALL | METH_KEYWORDS,
     "Insert line as most recently used; the evicted (line, dirty) if a line had to go."},
    {"invalidate", (PyCFunction)LRUTags_invalidate, METH_O, "Drop line if held; (line, dirty) if it was."},
    {"set_of", (PyCFunction)LRUTags_set_of, METH_O, "The set index of line."},
    {"stats", (PyCFunction)LRUTags_stats, METH_NOARGS, "The counters."},
    {"set_lines", (PyCFunction)LRUTags_lines, METH_O, "The (line, dirty) of set i, least recently used first."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LRUTagsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "archsim.cache._ctags.LRUTags",
    .tp_basicsize = sizeof(LRUTags),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Set-associative LRU tag array: archsim.cache.set_assoc.SetAssocCache, compiled.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)LRUTags_init,
    .tp_dealloc = (destructor)LRUTags_dealloc,
    .tp_methods = LRUTags_methods,
    .tp_members = LRUTags_members,
    .tp_getset = LRUTags_getset,
};

static struct PyModuleDef ctags_module = {
    PyModuleDef_HEAD_INIT, "_ctags", "The LRU tag array of archsim.cache.set_assoc, compiled.", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ctags(void)
{
    if (PyType_Ready(&LRUTagsType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&ctags_module);
    if (!m)
        return NULL;
    Py_INCREF(&LRUTagsType);
    if (PyModule_AddObject(m, "LRUTags", (PyObject *)&LRUTagsType) < 0) {
        Py_DECREF(&LRUTagsType);
        Py_DECREF(m);
        return NULL;
    }
    /* the C API the compiled host engine (archsim/dram/_chost.h) calls: see _ctags_api.h */
    static ArchsimTagsAPI api;
    api.type = &LRUTagsType;
    api.lookup = tags_lookup;
    api.fill = tags_fill;
    PyObject *cap = PyCapsule_New(&api, ARCHSIM_TAGS_CAPSULE, NULL);
    if (!cap || PyModule_AddObject(m, "_C_API", cap) < 0) {
        Py_XDECREF(cap);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddStringConstant(m, "policy", "lru") < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
