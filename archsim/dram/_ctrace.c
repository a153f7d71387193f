/*
 * Fast path of the trace reader (archsim/workload/trace.py).
 *
 * parse_trace_block(text, pos) parses the complete lines of `text` (a str whose lines end in '\n') from
 * index `pos` on and returns (records, pos, lines): the (address, is_write, cycle) tuples of the lines it
 * understood, the index where it stopped, and how many lines it consumed (blank and comment lines count).
 * It stops before the first line that is not in the plain forms below, and at the end of the text, so the
 * Python reader handles that line with its reference parser: unusual spellings Python accepts (digit
 * separators, big numbers, other whitespace) and every error message stay exactly as they were.
 *
 * parse_trace_block(text, pos, lo, hi, max_cycle) also stops before a line whose address is outside
 * [lo, hi) (hi 0: no upper bound) or whose cycle is above max_cycle (negative: no bound), for the reference
 * parser to refuse it with its message (an address beyond the memory, a cycle beyond the trace limit).
 *
 * Plain forms (fields separated by spaces or tabs, case-insensitive keywords):
 *     ADDR R|W|READ|WRITE|LD|ST [CYCLE]      LD|ST ADDR      # comment
 * ADDR and CYCLE: 0x + 1..16 hex digits, or 1..19 decimal digits.
 */

#include "_cchannel.h"

#include <stdint.h>

const char archsim_parse_trace_block_doc[] =
    "parse_trace_block(text, pos, lo=0, hi=0, max_cycle=-1) -> (records, pos, lines): the plain trace lines "
    "of text from pos on, stopping before an address outside [lo, hi) (hi 0: none) or a cycle above max_cycle";

enum { LINE_SKIP, LINE_REC, LINE_SLOW };

typedef struct {
    int kind;
    const void *data;
} Text;

static inline Py_UCS4 at(const Text *t, Py_ssize_t i)
{
    return PyUnicode_READ(t->kind, t->data, i);
}

static inline Py_UCS4 upper(Py_UCS4 c)
{
    return (c >= 'a' && c <= 'z') ? c - 32 : c;
}

/* token [b, e) equals the upper-case ASCII word w, ignoring case */
static int word_is(const Text *t, Py_ssize_t b, Py_ssize_t e, const char *w)
{
    Py_ssize_t n = (Py_ssize_t)strlen(w);
    if (e - b != n)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (upper(at(t, b + i)) != (Py_UCS4)w[i])
            return 0;
    return 1;
}

/* _parse_int for the plain spellings; 0 when the token needs the reference parser */
static int parse_uint(const Text *t, Py_ssize_t b, Py_ssize_t e, uint64_t *out)
{
    uint64_t v = 0;
    if (e - b >= 2 && at(t, b) == '0' && upper(at(t, b + 1)) == 'X') {
        Py_ssize_t n = e - b - 2;
        if (n < 1 || n > 16)
            return 0;
        for (Py_ssize_t i = b + 2; i < e; i++) {
            Py_UCS4 c = at(t, i);
            unsigned d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                return 0;
            v = (v << 4) | d;
        }
    } else {
        Py_ssize_t n = e - b;
        if (n < 1 || n > 19)
            return 0;
        for (Py_ssize_t i = b; i < e; i++) {
            Py_UCS4 c = at(t, i);
            if (c < '0' || c > '9')
                return 0;
            v = v * 10 + (c - '0');
        }
    }
    *out = v;
    return 1;
}

/* one line [b, e) without its newline */
static int parse_line(const Text *t, Py_ssize_t b, Py_ssize_t e, uint64_t *addr, int *is_write, int64_t *cycle)
{
    Py_ssize_t tb[3], te[3];
    int ntok = 0;
    Py_ssize_t i = b;
    while (i < e) {
        Py_UCS4 c = at(t, i);
        if (c == ' ' || c == '\t') {
            i++;
            continue;
        }
        if (c < 33 || c > 126)
            return LINE_SLOW; /* other whitespace, control or non-ASCII characters */
        if (ntok == 3)
            return LINE_SLOW; /* a fourth field: the reference parser reports it */
        tb[ntok] = i;
        while (i < e && (c = at(t, i)) >= 33 && c <= 126)
            i++;
        te[ntok++] = i;
    }
    if (ntok == 0)
        return LINE_SKIP;
    if (at(t, tb[0]) == '#')
        return LINE_SKIP;
    if (word_is(t, tb[0], te[0], "LD") || word_is(t, tb[0], te[0], "ST")) {
        if (ntok != 2 || !parse_uint(t, tb[1], te[1], addr))
            return LINE_SLOW;
        *is_write = upper(at(t, tb[0])) == 'S';
        *cycle = -1;
        return LINE_REC;
    }
    if (ntok < 2)
        return LINE_SLOW;
    if (word_is(t, tb[1], te[1], "R") || word_is(t, tb[1], te[1], "READ") || word_is(t, tb[1], te[1], "LD"))
        *is_write = 0;
    else if (word_is(t, tb[1], te[1], "W") || word_is(t, tb[1], te[1], "WRITE") || word_is(t, tb[1], te[1], "ST"))
        *is_write = 1;
    else
        return LINE_SLOW;
    if (!parse_uint(t, tb[0], te[0], addr))
        return LINE_SLOW;
    *cycle = -1;
    if (ntok == 3) {
        uint64_t cy;
        if (!parse_uint(t, tb[2], te[2], &cy) || cy > (uint64_t)INT64_MAX)
            return LINE_SLOW;
        *cycle = (int64_t)cy;
    }
    return LINE_REC;
}

PyObject *archsim_parse_trace_block(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *text;
    Py_ssize_t pos;
    unsigned long long lo = 0, hi = 0;
    long long max_cycle = -1;
    if (!PyArg_ParseTuple(args, "Un|KKL", &text, &pos, &lo, &hi, &max_cycle))
        return NULL;
    Text t = {PyUnicode_KIND(text), PyUnicode_DATA(text)};
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    if (pos < 0)
        pos = 0;
    PyObject *out = PyList_New(0);
    if (!out)
        return NULL;
    Py_ssize_t lines = 0;
    while (pos < len) {
        Py_ssize_t eol = PyUnicode_FindChar(text, '\n', pos, len, 1);
        if (eol == -2)
            goto fail;
        if (eol < 0)
            break; /* an incomplete line: the caller completes it */
        uint64_t addr = 0;
        int is_write = 0;
        int64_t cycle = -1;
        int kind = parse_line(&t, pos, eol, &addr, &is_write, &cycle);
        if (kind == LINE_SLOW)
            break;
        if (kind == LINE_REC && (addr < lo || (hi && addr >= hi) || (max_cycle >= 0 && cycle > max_cycle)))
            break; /* out of bounds: the reference parser reports it */
        if (kind == LINE_REC) {
            PyObject *a = PyLong_FromUnsignedLongLong(addr);
            PyObject *c = PyLong_FromLongLong(cycle);
            PyObject *rec = (a && c) ? PyTuple_Pack(3, a, is_write ? Py_True : Py_False, c) : NULL;
            Py_XDECREF(a);
            Py_XDECREF(c);
            if (!rec)
                goto fail;
            int rc = PyList_Append(out, rec);
            Py_DECREF(rec);
            if (rc < 0)
                goto fail;
        }
        lines++;
        pos = eol + 1;
    }
    return Py_BuildValue("Nnn", out, pos, lines);
fail:
    Py_DECREF(out);
    return NULL;
}
