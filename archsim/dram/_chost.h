/*
 * _chost.h: the compiled host engine (issue #15), part of the _cchannel translation unit (included by
 * _cchannel.c after _csched.h, whose heap and merged run it uses).
 *
 * What it replaces: the fast Python path of a host whose cores read embedding rows through an LLC straight into
 * a compiled DRAM system (archsim/system/embedding.py Core.pump_light / on_line_light, archsim/cache/component.py
 * Cache.read_light / _send_miss / _on_fill_data / _fill, archsim/core/port.py MemoryPort.send / _drain, and
 * DRAMSystem.submit).  The Python path stays the reference; this engine must give the same results bit for bit
 * (tests/test_host_engine.py).  Every event that path schedules is a record of the heap (_csched.h) at the
 * reference's key.
 *
 * What stays in Python: the batches (the bag list is handed over per batch as arrays), a batch's end (one call
 * per batch, which schedules the batch's completion as before), and the port's wait for queue space (a
 * space event per full channel, as in MemoryPort; rare).
 */

#include "../cache/_ctags_api.h"

/* a read waiting for a line in flight (the LLC's MSHR entry holds a list of them) */
typedef struct {
    int core, next;
    i64 bag, t_submit;
} HWait;

typedef struct {
    u64 line;
    int head, tail; /* head < 0: empty */
} HMshr;

typedef struct {
    int free;
    i64 pos, end, bag, pool_ps, busy_until, qpos;
} HCore;


struct Host {
    Sched *sc; /* the loop's heap */
    /* ---- configuration */
    PyObject *tags;
    const ArchsimTagsAPI *api;
    int line_shift;
    i64 line_bytes, hit_ps, to_next_ps, from_next_ps;
    int ncores, static_sched;
    Channel **ch; /* this memory system's channels (references held by the loop) */
    int nch;
    PyObject *batch_end;
    /* ---- state */
    HCore *cores;
    HWait *w;
    int capw, wfree;
    HMshr *mshr;
    int mcap;
    Fifo *pq; /* per channel: lines waiting for queue space (MemoryPort.waiting) */
    /* ---- the batch */
    u64 *addrs;
    i64 *lo, *hi, *pps, *t_start, *left;
    i64 nbags, wpos, bags_left, t_end;
    /* ---- results not yet taken by Python */
    i64 *linelat, *baglat;
    i64 nll, capll, nbl, capbl;
    i64 accesses, merged, sent, stalled;
    Fab *fab; /* the CXL path behind the LLC's router (_cfab.h; NULL: the LLC sits on the DRAM) */
};

/* ------------------------------------------------------------------------------------------ MSHR */

static inline int mshr_find(const Host *h, u64 line)
{
    int m = h->mcap - 1;
    int i = (int)((line * 0x9E3779B97F4A7C15ULL) >> 40) & m;
    while (h->mshr[i].head >= 0) {
        if (h->mshr[i].line == line)
            return i;
        i = (i + 1) & m;
    }
    return ~i; /* the free entry where it would go */
}

/* delete entry i (backward-shift deletion keeps every probe sequence unbroken) */
static void mshr_delete(Host *h, int i)
{
    int m = h->mcap - 1;
    int j = i;
    for (;;) {
        h->mshr[i].head = -1;
        for (;;) {
            j = (j + 1) & m;
            if (h->mshr[j].head < 0)
                return;
            int home = (int)((h->mshr[j].line * 0x9E3779B97F4A7C15ULL) >> 40) & m;
            if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
                continue;
            break;
        }
        h->mshr[i] = h->mshr[j];
        i = j;
    }
}

/* ------------------------------------------------------------------------------------------ the LLC */

/* Cache.read_light: core `core`'s read of `addr` for bag `bag` at `now` */
static int host_read(Host *h, int core, i64 bag, u64 addr, i64 now)
{
    h->accesses += 1;
    u64 line = addr >> h->line_shift;
    if (h->api->lookup(h->tags, line, 0))
        return hpush(h->sc, now + h->hit_ps, HK_LINE, core, bag, now);
    int e = mshr_find(h, line);
    int wi = fl_take((void **)&h->w, &h->capw, &h->wfree, sizeof(HWait), offsetof(HWait, next));
    if (wi < 0)
        return -1;
    HWait *w = &h->w[wi];
    w->core = core;
    w->bag = bag;
    w->t_submit = now;
    if (e >= 0) {
        h->w[h->mshr[e].tail].next = wi;
        h->mshr[e].tail = wi;
        h->merged += 1;
        return 0;
    }
    e = ~e;
    h->mshr[e].line = line;
    h->mshr[e].head = wi;
    h->mshr[e].tail = wi;
    return hpush(h->sc, now + h->hit_ps + h->to_next_ps, HK_SEND, 0, (i64)line, 0);
}

/* Cache._fill: the line is here; the reads waiting for it complete now */
static int host_fill(Host *h, u64 line, i64 now)
{
    int e = mshr_find(h, line);
    if (e < 0) {
        PyErr_SetString(PyExc_RuntimeError, "host engine: a fill without a miss in flight");
        return -1;
    }
    int wi = h->mshr[e].head;
    mshr_delete(h, e);
    u64 vline = 0;
    int vdirty = 0;
    int rc = h->api->fill(h->tags, line, 0, &vline, &vdirty);
    if (rc < 0)
        return -1;
    if (rc && vdirty) {
        PyErr_SetString(PyExc_RuntimeError, "host engine: a dirty line in a cache only the cores read");
        return -1;
    }
    while (wi >= 0) {
        HWait *w = &h->w[wi];
        if (hpush(h->sc, now, HK_LINE, w->core, w->bag, w->t_submit) < 0)
            return -1;
        int nxt = w->next;
        w->next = h->wfree;
        h->wfree = wi;
        wi = nxt;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ the port */

/* DRAMSystem.submit of a line read at `now` (the channel accepts it: checked) */
static int host_submit(Host *h, Channel *s, u64 line, i64 now)
{
    i64 c;
    if (accept_cycle(s, now, &c) < 0 || engine_read(s, line << h->line_shift, c, 1, (i64)line, -1) < 0)
        return -1;
    h->sent += 1;
    return wake(s, c);
}

/* register a wait for space on channel k: MemoryPort's mem.space_event(req).callbacks.append(drain) */
static int host_wait_space(Host *h, int k)
{
    return engine_wait_space(h->ch[k], 1, 0, k);
}

/* MemoryPort.send of the miss of `line` at `now` */
static int host_send(Host *h, u64 line, i64 now)
{
    if (h->fab) { /* the router: the host DRAM's range, or the CXL link */
        i64 a = (i64)(line << h->line_shift);
        if (a < fab_dram_lo(h->fab) || a >= fab_dram_hi(h->fab))
            return fab_send(h->fab, line, now);
    }
    int ch, fb, row, col;
    decode(h->ch[0], line << h->line_shift, &ch, &fb, &row, &col);
    if (ch < 0 || ch >= h->nch) {
        PyErr_Format(PyExc_ValueError, "address 0x%llx maps to channel %d of %d",
                     (unsigned long long)(line << h->line_shift), ch, h->nch);
        return -1;
    }
    Channel *s = h->ch[ch];
    Fifo *q = &h->pq[ch];
    if (can_accept_c(s, 0) && q->n == 0)
        return host_submit(h, s, line, now);
    if (fifo_push(q, line) < 0)
        return -1;
    h->stalled += 1;
    if (q->n == 1)
        return host_wait_space(h, ch);
    return 0;
}

/* ------------------------------------------------------------------------------------------ the cores */

/* EmbeddingOperator.next_bag: the next bag for `core` (-1: none left) */
static inline i64 next_bag(Host *h, HCore *k, int core)
{
    if (h->static_sched) {
        i64 b = core + k->qpos * h->ncores;
        if (b >= h->nbags)
            return -1;
        k->qpos += 1;
        return b;
    }
    if (h->wpos >= h->nbags)
        return -1;
    return h->wpos++;
}

/* Core.pump_light: issue lines while fill buffers are free and work remains */
static int host_pump(Host *h, int core, i64 now)
{
    HCore *k = &h->cores[core];
    while (k->free > 0) {
        if (k->pos >= k->end) {
            i64 b = next_bag(h, k, core);
            if (b < 0)
                return 0;
            k->bag = b;
            k->pos = h->lo[b];
            k->end = h->hi[b];
            k->pool_ps = h->pps[b];
            h->t_start[b] = now;
        }
        u64 addr = h->addrs[k->pos];
        k->pos += 1;
        k->free -= 1;
        if (host_read(h, core, k->bag, addr, now) < 0)
            return -1;
    }
    return 0;
}

/* Core.on_line_light: a line of bag `bag` is back at core `core` */
static int host_line(Host *h, int core, i64 bag, i64 t_submit, i64 now)
{
    HCore *k = &h->cores[core];
    k->free += 1;
    if (h->nll >= h->capll && grow64(&h->linelat, &h->capll, h->nll + 1) < 0)
        return -1;
    h->linelat[h->nll++] = now - t_submit;
    i64 t = k->busy_until; /* Datapath.pool(now, 1, pool_ps, 0) */
    t = (t > now ? t : now) + k->pool_ps;
    k->busy_until = t;
    if (--h->left[bag] == 0) { /* EmbeddingOperator.bag_done */
        if (h->nbl >= h->capbl && grow64(&h->baglat, &h->capbl, h->nbl + 1) < 0)
            return -1;
        h->baglat[h->nbl++] = t - h->t_start[bag];
        if (t > h->t_end)
            h->t_end = t;
        if (--h->bags_left == 0) { /* the batch's last bag: Python schedules the batch's end */
            h->sc->sh_valid = 0;
            PyObject *tt = PyLong_FromLongLong(h->t_end);
            if (!tt)
                return -1;
            PyObject *r = PyObject_CallOneArg(h->batch_end, tt);
            Py_DECREF(tt);
            if (!r)
                return -1;
            Py_DECREF(r);
        }
    }
    return host_pump(h, core, now);
}

/* the DRAM completed the host's read of `line` (from tick): the done event's callback (_on_fill_data) runs at
 * the key complete_at would give it */
static int host_dram_done(Loop *g, i64 line, i64 now)
{
    return hpush(g->host->sc, now, HK_FDATA, 0, line, 0);
}

/* ------------------------------------------------------------------------------------------ actions */

static int host_act(Host *h, const HRec *r)
{
    switch (r->kind) {
    case HK_LINE:
        return host_line(h, r->a, r->b, r->c, r->t);
    case HK_SEND:
        return host_send(h, (u64)r->b, r->t);
    case HK_FDATA: /* Cache._on_fill_data: the line crosses back to the LLC */
        return hpush(h->sc, r->t + h->from_next_ps, HK_FILL, 0, r->b, 0);
    default:
        return host_fill(h, (u64)r->b, r->t);
    }
}

/* MemoryPort._drain for channel k (the callback of a space event) */
static int host_drain(Host *h, int k, i64 now)
{
    if (k < 0 || k >= h->nch) {
        PyErr_SetString(PyExc_ValueError, "host_drain: no such channel");
        return -1;
    }
    Fifo *q = &h->pq[k];
    Channel *s = h->ch[k];
    while (q->n > 0) {
        if (!can_accept_c(s, 0))
            return host_wait_space(h, k);
        if (host_submit(h, s, fifo_pop(q), now) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ Python face */

static void host_free(Host *h)
{
    if (!h)
        return;
    Py_XDECREF(h->tags);
    Py_XDECREF(h->batch_end);
    if (h->pq)
        for (int i = 0; i < h->nch; i++)
            PyMem_Free(h->pq[i].v);
    PyMem_Free(h->pq);
    PyMem_Free(h->ch);
    PyMem_Free(h->cores);
    PyMem_Free(h->w);
    PyMem_Free(h->mshr);
    PyMem_Free(h->addrs);
    PyMem_Free(h->lo);
    PyMem_Free(h->hi);
    PyMem_Free(h->pps);
    PyMem_Free(h->t_start);
    PyMem_Free(h->left);
    PyMem_Free(h->linelat);
    PyMem_Free(h->baglat);
    PyMem_Free(h);
}

/* attach_host(channels, tags, line_bytes, hit_ps, to_next_ps, from_next_ps, cores, fill_buffers, static,
 *             batch_end, queue, eid, heappush, proxy_cls) */
static PyObject *Loop_attach_host(Loop *g, PyObject *args)
{
    PyObject *chans, *tags, *batch_end, *queue, *eid_it, *heappush, *proxy_cls;
    long long line_bytes, hit_ps, to_next, from_next;
    int ncores, fill_buffers, static_sched;
    if (!PyArg_ParseTuple(args, "OOLLLLiipOOOOO", &chans, &tags, &line_bytes, &hit_ps, &to_next, &from_next,
                          &ncores, &fill_buffers, &static_sched, &batch_end, &queue, &eid_it, &heappush,
                          &proxy_cls))
        return NULL;
    if (g->host || g->src_state != SRC_OFF) {
        PyErr_SetString(PyExc_RuntimeError, "the loop already has a host engine or a source");
        return NULL;
    }
    Sched *sc = sched_get(g, queue, eid_it, heappush, proxy_cls);
    if (!sc)
        return NULL;
    const ArchsimTagsAPI *api = PyCapsule_Import(ARCHSIM_TAGS_CAPSULE, 0);
    if (!api)
        return NULL;
    if ((PyObject *)Py_TYPE(tags) != (PyObject *)api->type) {
        PyErr_SetString(PyExc_TypeError, "attach_host: tags must be an LRUTags");
        return NULL;
    }
    if (!PyTuple_Check(chans) || PyTuple_GET_SIZE(chans) < 1 || !PyList_Check(queue) || ncores < 1 ||
        fill_buffers < 1 || line_bytes < 1 || (line_bytes & (line_bytes - 1))) {
        PyErr_SetString(PyExc_ValueError, "attach_host: bad arguments");
        return NULL;
    }
    int nch = (int)PyTuple_GET_SIZE(chans);
    Host *h = PyMem_Calloc(1, sizeof(Host));
    if (!h)
        return PyErr_NoMemory();
    h->ch = PyMem_Calloc((size_t)nch, sizeof(Channel *));
    h->pq = PyMem_Calloc((size_t)nch, sizeof(Fifo));
    h->cores = PyMem_Calloc((size_t)ncores, sizeof(HCore));
    h->mcap = 64;
    while (h->mcap < 4 * ncores * fill_buffers)
        h->mcap *= 2;
    h->mshr = PyMem_Calloc((size_t)h->mcap, sizeof(HMshr));
    h->nch = nch;
    if (!h->ch || !h->pq || !h->cores || !h->mshr) {
        host_free(h);
        return PyErr_NoMemory();
    }
    for (int i = 0; i < h->mcap; i++)
        h->mshr[i].head = -1;
    for (int i = 0; i < nch; i++) {
        PyObject *c = PyTuple_GET_ITEM(chans, i);
        int found = 0;
        for (int j = 0; j < g->n; j++)
            if ((PyObject *)g->ch[j] == c)
                found = 1;
        if (!found) {
            host_free(h);
            PyErr_SetString(PyExc_ValueError, "attach_host: a channel of another loop");
            return NULL;
        }
        h->ch[i] = (Channel *)c;
    }
    int shift = 0;
    while (((long long)1 << shift) < line_bytes)
        shift++;
    h->line_shift = shift;
    h->line_bytes = line_bytes;
    h->hit_ps = hit_ps;
    h->to_next_ps = to_next;
    h->from_next_ps = from_next;
    h->ncores = ncores;
    h->static_sched = static_sched;
    for (int i = 0; i < ncores; i++)
        h->cores[i].free = fill_buffers;
    h->api = api;
    h->tags = Py_NewRef(tags);
    h->batch_end = Py_NewRef(batch_end);
    h->wfree = -1;
    h->sc = sc;
    g->host = h;
    Py_RETURN_NONE;
}

/* copy an int64 buffer of n items into a fresh C array */
static int take_i64(PyObject *o, i64 n, i64 **out)
{
    Py_buffer b;
    if (PyObject_GetBuffer(o, &b, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (b.len != (Py_ssize_t)(n * (i64)sizeof(i64))) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "host_batch: an array of the wrong size");
        return -1;
    }
    i64 *a = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(i64));
    if (!a) {
        PyBuffer_Release(&b);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(a, b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    PyMem_Free(*out);
    *out = a;
    return 0;
}

/* host_batch(addrs, lo, hi, pool_ps, nbags): a batch's bags (line addresses as uint64, bag b's lines
 * addrs[lo[b]:hi[b]], pooling time of a line pool_ps[b]; all int64 arrays), then the cores pump */
static PyObject *Loop_host_batch(Loop *g, PyObject *args)
{
    Host *h = g->host;
    PyObject *addrs, *lo, *hi, *pps;
    long long naddrs, nbags;
    if (!h) {
        PyErr_SetString(PyExc_RuntimeError, "no host engine attached");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OLOOOL", &addrs, &naddrs, &lo, &hi, &pps, &nbags))
        return NULL;
    if (h->bags_left != 0) {
        PyErr_SetString(PyExc_RuntimeError, "host_batch: the previous batch is not done");
        return NULL;
    }
    if (take_i64(addrs, naddrs, (i64 **)&h->addrs) < 0 || take_i64(lo, nbags, &h->lo) < 0 ||
        take_i64(hi, nbags, &h->hi) < 0 || take_i64(pps, nbags, &h->pps) < 0)
        return NULL;
    PyMem_Free(h->t_start);
    PyMem_Free(h->left);
    h->t_start = PyMem_Calloc((size_t)(nbags > 0 ? nbags : 1), sizeof(i64));
    h->left = PyMem_Calloc((size_t)(nbags > 0 ? nbags : 1), sizeof(i64));
    if (!h->t_start || !h->left)
        return PyErr_NoMemory();
    for (i64 b = 0; b < nbags; b++) {
        h->left[b] = h->hi[b] - h->lo[b];
        if (h->left[b] <= 0 || h->lo[b] < 0 || h->hi[b] > naddrs) {
            PyErr_SetString(PyExc_ValueError, "host_batch: a bag without lines or out of range");
            return NULL;
        }
    }
    h->nbags = nbags;
    h->wpos = 0;
    h->bags_left = nbags;
    h->t_end = 0;
    i64 now;
    if (now_ps(g->env, &now) < 0)
        return NULL;
    h->t_end = now;
    for (int i = 0; i < h->ncores; i++) {
        h->cores[i].qpos = 0;
        if (host_pump(h, i, now) < 0)
            return NULL;
    }
    if (ensure_proxy(g, h->sc) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *take_lat(i64 *a, i64 *n)
{
    PyObject *o = PyBytes_FromStringAndSize((const char *)a, (Py_ssize_t)(*n * (i64)sizeof(i64)));
    if (o)
        *n = 0;
    return o;
}

/* host_take() -> (line latencies, bag latencies, accesses, merged, sent, stalled): what was gathered since the
 * last call (latencies as int64 bytes) */
static PyObject *Loop_host_take(Loop *g, PyObject *Py_UNUSED(ignored))
{
    Host *h = g->host;
    if (!h) {
        PyErr_SetString(PyExc_RuntimeError, "no host engine attached");
        return NULL;
    }
    PyObject *ll = take_lat(h->linelat, &h->nll);
    PyObject *bl = ll ? take_lat(h->baglat, &h->nbl) : NULL;
    if (!bl) {
        Py_XDECREF(ll);
        return NULL;
    }
    PyObject *r = Py_BuildValue("(NNLLLL)", ll, bl, (long long)h->accesses, (long long)h->merged,
                                (long long)h->sent, (long long)h->stalled);
    h->accesses = h->merged = h->sent = h->stalled = 0;
    return r;
}

static int host_traverse(Host *h, visitproc visit, void *arg)
{
    if (!h)
        return 0;
    Py_VISIT(h->tags);
    Py_VISIT(h->batch_end);
    return 0;
}
