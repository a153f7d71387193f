/*
 * _chost.h: the compiled host engine (issue #15), part of the _cchannel translation unit (included by
 * _cchannel.c after the cycle loop; it uses the loop's and the channels' internals).
 *
 * What it replaces: the fast Python path of a host whose cores read embedding rows through an LLC straight into
 * a compiled DRAM system (archsim/system/embedding.py Core.pump_light / on_line_light, archsim/cache/component.py
 * Cache.read_light / _send_miss / _on_fill_data / _fill, archsim/core/port.py MemoryPort.send / _drain, and
 * DRAMSystem.submit).  The Python path stays the reference; this engine must give the same results bit for bit
 * (tests/test_host_engine.py).
 *
 * How the order of events is kept.  Every event the reference schedules (a line's completion, a miss's trip to
 * the memory controller, the DRAM's completion, the fill) becomes a record in the engine's own heap with the
 * reference's key: its time, NORMAL priority and an insertion id drawn from SimPy's own counter (env._eid) at
 * the instant the reference would schedule it.  SimPy's heap compares only that key, so the two heaps together
 * pop in the reference's global order.  The engine runs its records, and the loop's DRAM cycles, in merged
 * order (a cycle edge is an URGENT wake-up in the reference: it comes before NORMAL records of its picosecond)
 * for as long as they come before the first entry of SimPy's queue that is not the engine's own; then it
 * returns to SimPy with one entry there for its next item: the loop's wake-up (as before) and a proxy whose key
 * is exactly that of its heap's head (no insertion id of its own, so no id is shifted).  A DRAM request of the
 * engine is a slot with no Python object; its completion draws its id where complete_at would.  The DRAM
 * loop's own wake-ups that the reference schedules while the engine runs are not scheduled: they only take
 * insertion ids, and skipping ids does not change the order of the others.
 *
 * What stays in Python: the batches (the bag list is handed over per batch as arrays), a batch's end (one call
 * per batch, which schedules the batch's completion as before), and the port's wait for queue space (a
 * space event per full channel, as in MemoryPort; rare).
 */

#include "../cache/_ctags_api.h"

enum { HK_LINE, HK_SEND, HK_FDATA, HK_FILL };

/* a scheduled action of the host: (t, eid) is the reference's key (priority NORMAL) */
typedef struct {
    i64 t, eid;
    i64 b, c;   /* HK_LINE: bag, t_submit; others: b = line */
    int kind, a; /* HK_LINE: a = core */
} HRec;

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

typedef struct {
    u64 *v;
    int head, n, cap;
} LineQ;

struct Host {
    /* ---- configuration */
    PyObject *tags;
    const ArchsimTagsAPI *api;
    int line_shift;
    i64 line_bytes, hit_ps, to_next_ps, from_next_ps;
    int ncores, static_sched;
    Channel **ch; /* this memory system's channels (references held by the loop) */
    int nch;
    PyObject *batch_end, *drains, *queue, *eid_it, *heappush, *on_host, *proxy_cls;
    /* ---- state */
    HCore *cores;
    HRec *heap;
    int nheap, capheap;
    HWait *w;
    int capw, wfree;
    HMshr *mshr;
    int mcap;
    LineQ *pq; /* per channel: lines waiting for queue space (MemoryPort.waiting) */
    /* ---- the batch */
    u64 *addrs;
    i64 *lo, *hi, *pps, *t_start, *left;
    i64 nbags, wpos, bags_left, t_end;
    /* ---- results not yet taken by Python */
    i64 *linelat, *baglat;
    i64 nll, capll, nbl, capbl;
    i64 accesses, merged, sent, stalled;
    /* ---- proxies in SimPy's queue: key and object */
    i64 *px_t, *px_e;
    PyObject **px_obj;
    int npx, cappx;
    /* ---- SimPy's head (ours excluded), cached until something may have pushed onto SimPy's queue */
    int sh_valid, sh_inf, sh_frac, sh_p;
    i64 sh_t, sh_e;
    i64 env_now; /* the time last written to env._now */
};

static PyObject *s_now_attr, *s_callbacks_attr;

/* ------------------------------------------------------------------------------------------ small helpers */

static int grow(void **p, int *cap, size_t size, int need)
{
    if (need <= *cap)
        return 0;
    int n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = PyMem_Realloc(*p, (size_t)n * size);
    if (!q) {
        PyErr_NoMemory();
        return -1;
    }
    *p = q;
    *cap = n;
    return 0;
}

static int grow64(i64 **p, i64 *cap, i64 need)
{
    if (need <= *cap)
        return 0;
    i64 n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    i64 *q = PyMem_Realloc(*p, (size_t)n * sizeof(i64));
    if (!q) {
        PyErr_NoMemory();
        return -1;
    }
    *p = q;
    *cap = n;
    return 0;
}

/* next(env._eid): the insertion id SimPy's env.schedule would take now */
static inline int draw_eid(Host *h, i64 *out)
{
    PyObject *o = Py_TYPE(h->eid_it)->tp_iternext(h->eid_it);
    if (!o) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "env._eid is exhausted");
        return -1;
    }
    long long v = PyLong_AsLongLong(o);
    Py_DECREF(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

static inline int hrec_less(const HRec *x, const HRec *y)
{
    return x->t < y->t || (x->t == y->t && x->eid < y->eid);
}

/* schedule an action at `t` (>= now): a record with the next insertion id */
static int hpush(Host *h, i64 t, int kind, int a, i64 b, i64 c)
{
    if (h->nheap >= h->capheap && grow((void **)&h->heap, &h->capheap, sizeof(HRec), h->nheap + 1) < 0)
        return -1;
    HRec r;
    if (draw_eid(h, &r.eid) < 0)
        return -1;
    r.t = t;
    r.kind = kind;
    r.a = a;
    r.b = b;
    r.c = c;
    int i = h->nheap++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!hrec_less(&r, &h->heap[p]))
            break;
        h->heap[i] = h->heap[p];
        i = p;
    }
    h->heap[i] = r;
    return 0;
}

static HRec hpop(Host *h)
{
    HRec top = h->heap[0];
    HRec last = h->heap[--h->nheap];
    int n = h->nheap, i = 0;
    for (;;) {
        int l = 2 * i + 1;
        if (l >= n)
            break;
        int m = (l + 1 < n && hrec_less(&h->heap[l + 1], &h->heap[l])) ? l + 1 : l;
        if (!hrec_less(&h->heap[m], &last))
            break;
        h->heap[i] = h->heap[m];
        i = m;
    }
    if (n > 0)
        h->heap[i] = last;
    return top;
}

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

static int wait_alloc(Host *h)
{
    if (h->wfree < 0) {
        int old = h->capw;
        if (grow((void **)&h->w, &h->capw, sizeof(HWait), old + 1) < 0)
            return -1;
        for (int i = old; i < h->capw; i++)
            h->w[i].next = i + 1 < h->capw ? i + 1 : -1;
        h->wfree = old;
    }
    int i = h->wfree;
    h->wfree = h->w[i].next;
    h->w[i].next = -1;
    return i;
}

/* ------------------------------------------------------------------------------------------ the LLC */

/* Cache.read_light: core `core`'s read of `addr` for bag `bag` at `now` */
static int host_read(Host *h, int core, i64 bag, u64 addr, i64 now)
{
    h->accesses += 1;
    u64 line = addr >> h->line_shift;
    if (h->api->lookup(h->tags, line, 0))
        return hpush(h, now + h->hit_ps, HK_LINE, core, bag, now);
    int e = mshr_find(h, line);
    int wi = wait_alloc(h);
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
    return hpush(h, now + h->hit_ps + h->to_next_ps, HK_SEND, 0, (i64)line, 0);
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
        if (hpush(h, now, HK_LINE, w->core, w->bag, w->t_submit) < 0)
            return -1;
        int nxt = w->next;
        w->next = h->wfree;
        h->wfree = wi;
        wi = nxt;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ the port */

static int lq_push(LineQ *q, u64 line)
{
    if (q->head + q->n >= q->cap) {
        if (q->head > 0) {
            memmove(q->v, q->v + q->head, (size_t)q->n * sizeof(u64));
            q->head = 0;
        }
        if (q->n >= q->cap && grow((void **)&q->v, &q->cap, sizeof(u64), q->n + 1) < 0)
            return -1;
    }
    q->v[q->head + q->n++] = line;
    return 0;
}

/* DRAMSystem.submit of a line read at `now` (the channel accepts it: checked) */
static int host_submit(Host *h, Channel *s, u64 line, i64 now)
{
    u64 addr = line << h->line_shift;
    int ch, fb, row, col;
    decode(s, addr, &ch, &fb, &row, &col);
    i64 c = now / s->tck + 1;
    if (c < s->cycle)
        c = s->cycle;
    if (s->wake_cycle >= NEVER && s->next_ref < c && catch_up(s, c) < 0)
        return -1;
    int slot = req_alloc(s);
    if (slot < 0)
        return -1;
    Req *r = &s->reqs[slot];
    r->addr = addr;
    r->is_write = 0;
    r->fb = fb;
    r->row = row;
    r->col = col;
    r->cmd = s->rd_cmd;
    r->added = c;
    r->index = (i64)line;
    r->host = 1;
    r->refs = 1; /* held while being queued */
    int rc = enqueue(s, slot, c);
    req_unref(s, slot);
    if (rc < 0)
        return -1;
    h->sent += 1;
    return wake(s, c);
}

/* register a wait for space on channel k: MemoryPort's mem.space_event(req).callbacks.append(drain) */
static int host_wait_space(Host *h, int k)
{
    Channel *s = h->ch[k];
    PyObject *ev = new_event(s->event_cls, s->env, PyList_GET_ITEM(h->drains, k));
    if (!ev)
        return -1;
    int rc = PyList_Append(s->space_waiters, ev);
    Py_DECREF(ev);
    return rc;
}

/* MemoryPort.send of the miss of `line` at `now` */
static int host_send(Host *h, u64 line, i64 now)
{
    int ch, fb, row, col;
    decode(h->ch[0], line << h->line_shift, &ch, &fb, &row, &col);
    if (ch < 0 || ch >= h->nch) {
        PyErr_Format(PyExc_ValueError, "address 0x%llx maps to channel %d of %d",
                     (unsigned long long)(line << h->line_shift), ch, h->nch);
        return -1;
    }
    Channel *s = h->ch[ch];
    LineQ *q = &h->pq[ch];
    if (can_accept_c(s, 0) && q->n == 0)
        return host_submit(h, s, line, now);
    if (lq_push(q, line) < 0)
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
            h->sh_valid = 0;
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
    return hpush(g->host, now, HK_FDATA, 0, line, 0);
}

/* ------------------------------------------------------------------------------------------ SimPy's queue */

/* the key of SimPy queue entry `item` ((time, priority, eid, event)); a non-integer float time sets *frac
 * and rounds up */
static int entry_key(PyObject *item, i64 *t, int *frac, int *p, i64 *e)
{
    PyObject *ot = PyTuple_GET_ITEM(item, 0);
    *frac = 0;
    if (PyFloat_Check(ot)) {
        double d = PyFloat_AS_DOUBLE(ot);
        if (d >= 9.0e18) {
            *t = INT64_MAX;
        } else {
            i64 v = (i64)d;
            if ((double)v < d) {
                v += 1;
                *frac = 1;
            }
            *t = v;
        }
    } else {
        long long v = PyLong_AsLongLong(ot);
        if (v == -1 && PyErr_Occurred())
            return -1;
        *t = v;
    }
    long pv = PyLong_AsLong(PyTuple_GET_ITEM(item, 1));
    if (pv == -1 && PyErr_Occurred())
        return -1;
    *p = (int)pv;
    long long ev = PyLong_AsLongLong(PyTuple_GET_ITEM(item, 2));
    if (ev == -1 && PyErr_Occurred())
        return -1;
    *e = ev;
    return 0;
}

static inline int key_less(i64 t1, int f1, int p1, i64 e1, i64 t2, int f2, int p2, i64 e2)
{
    /* a rounded-up float time is a little earlier than its integer */
    if (t1 != t2)
        return t1 < t2;
    if (f1 != f2)
        return f1 > f2;
    if (p1 != p2)
        return p1 < p2;
    return e1 < e2;
}

static inline int is_ours(Loop *g, Host *h, PyObject *ev)
{
    if (ev == g->wake_ev)
        return 1;
    for (int i = 0; i < h->npx; i++)
        if (h->px_obj[i] == ev)
            return 1;
    return 0;
}

/* the first entry of SimPy's queue that is not the engine's (its wake-up, its proxies): a best-first walk of
 * the heap from the root that opens an entry of ours into its two children */
static int simpy_head(Loop *g, Host *h)
{
    if (h->sh_valid)
        return 0;
    PyObject *q = h->queue;
    Py_ssize_t n = PyList_GET_SIZE(q);
    enum { MAXC = 64 };
    Py_ssize_t cand[MAXC];
    i64 ct[MAXC], ce[MAXC];
    int cf[MAXC], cp[MAXC];
    int nc = 0;
    h->sh_inf = 1;
    if (n > 0) {
        cand[0] = 0;
        if (entry_key(PyList_GET_ITEM(q, 0), &ct[0], &cf[0], &cp[0], &ce[0]) < 0)
            return -1;
        nc = 1;
    }
    while (nc > 0) {
        int m = 0;
        for (int i = 1; i < nc; i++)
            if (key_less(ct[i], cf[i], cp[i], ce[i], ct[m], cf[m], cp[m], ce[m]))
                m = i;
        Py_ssize_t at = cand[m];
        PyObject *item = PyList_GET_ITEM(q, at);
        if (!is_ours(g, h, PyTuple_GET_ITEM(item, 3)) || nc + 1 >= MAXC) {
            h->sh_inf = 0;
            h->sh_t = ct[m];
            h->sh_frac = cf[m];
            h->sh_p = cp[m];
            h->sh_e = ce[m];
            break;
        }
        /* replace it with its children */
        cand[m] = cand[nc - 1];
        ct[m] = ct[nc - 1];
        cf[m] = cf[nc - 1];
        cp[m] = cp[nc - 1];
        ce[m] = ce[nc - 1];
        nc--;
        for (Py_ssize_t c = 2 * at + 1; c <= 2 * at + 2 && c < n; c++) {
            if (entry_key(PyList_GET_ITEM(q, c), &ct[nc], &cf[nc], &cp[nc], &ce[nc]) < 0)
                return -1;
            cand[nc++] = c;
        }
    }
    h->sh_valid = 1;
    return 0;
}

/* one entry in SimPy's queue with the key of the heap's head, unless one is there already */
static int ensure_proxy(Loop *g, Host *h)
{
    if (h->nheap == 0)
        return 0;
    const HRec *top = &h->heap[0];
    for (int i = 0; i < h->npx; i++)
        if (h->px_t[i] == top->t && h->px_e[i] == top->eid)
            return 0;
    if (h->npx >= h->cappx) {
        int cap = h->cappx;
        if (grow((void **)&h->px_t, &cap, sizeof(i64), h->npx + 1) < 0)
            return -1;
        cap = h->cappx;
        if (grow((void **)&h->px_e, &cap, sizeof(i64), h->npx + 1) < 0)
            return -1;
        if (grow((void **)&h->px_obj, &h->cappx, sizeof(PyObject *), h->npx + 1) < 0)
            return -1;
    }
    PyObject *px = PyObject_CallNoArgs(h->proxy_cls);
    if (!px)
        return -1;
    PyObject *cbs = PyList_New(1);
    if (!cbs) {
        Py_DECREF(px);
        return -1;
    }
    PyList_SET_ITEM(cbs, 0, Py_NewRef(h->on_host));
    int rc = PyObject_SetAttr(px, s_callbacks_attr, cbs);
    Py_DECREF(cbs);
    if (rc < 0) {
        Py_DECREF(px);
        return -1;
    }
    PyObject *entry = Py_BuildValue("(LOLO)", (long long)top->t, g->prio_normal, (long long)top->eid, px);
    if (!entry) {
        Py_DECREF(px);
        return -1;
    }
    PyObject *r = PyObject_CallFunctionObjArgs(h->heappush, h->queue, entry, NULL);
    Py_DECREF(entry);
    if (!r) {
        Py_DECREF(px);
        return -1;
    }
    Py_DECREF(r);
    h->px_t[h->npx] = top->t;
    h->px_e[h->npx] = top->eid;
    h->px_obj[h->npx] = px; /* the reference moves to this array; the queue holds its own */
    h->npx++;
    return 0;
}

static int set_env_now(Loop *g, Host *h, i64 t)
{
    if (t == h->env_now)
        return 0;
    PyObject *o = PyLong_FromLongLong(t);
    if (!o)
        return -1;
    int rc = PyObject_SetAttr(g->env, s_now_attr, o);
    Py_DECREF(o);
    if (rc < 0)
        return -1;
    h->env_now = t;
    return 0;
}

/* ------------------------------------------------------------------------------------------ the merged run */

static int host_act(Host *h, const HRec *r)
{
    switch (r->kind) {
    case HK_LINE:
        return host_line(h, r->a, r->b, r->c, r->t);
    case HK_SEND:
        return host_send(h, (u64)r->b, r->t);
    case HK_FDATA: /* Cache._on_fill_data: the line crosses back to the LLC */
        return hpush(h, r->t + h->from_next_ps, HK_FILL, 0, r->b, 0);
    default:
        return host_fill(h, (u64)r->b, r->t);
    }
}

/* Return to SimPy: the loop's wake-up at its next cycle (kept if one is pending for that time) and a proxy for
 * the host's next record. */
static int suspend_merged(Loop *g, Host *h)
{
    i64 c = loop_next_cycle(g);
    if (c >= NEVER) {
        Py_CLEAR(g->wake_ev); /* a pending one is stale */
    } else if (!(g->wake_ev && g->wake_ev_time == c * g->tck && g->wake_ev_prio == 0)) {
        if (schedule_wake(g, c * g->tck, 0, WAKE_CHANNEL) < 0)
            return -1;
    }
    return ensure_proxy(g, h);
}

/* The loop's DRAM cycles and the host's records in merged order, while they come before SimPy's next entry.
 * `first_dram`: started by the loop's wake-up, whose cycle is processed whatever SimPy holds at its time (as
 * run_loop's first item). */
static int run_merged(Loop *g, int first_dram)
{
    Host *h = g->host;
    const i64 tck = g->tck;
    h->sh_valid = 0;
    h->env_now = -1;
    for (;;) {
        i64 c = loop_next_cycle(g);
        i64 tc = c < NEVER ? c * tck : INT64_MAX;
        int have_h = h->nheap > 0;
        if (simpy_head(g, h) < 0)
            return -1;
        if (c < NEVER && (!have_h || tc <= h->heap[0].t)) {
            /* an edge is URGENT: before the NORMAL records of its picosecond, after SimPy's URGENT entries */
            if (!first_dram && !h->sh_inf && !(tc < h->sh_t || (tc == h->sh_t && !h->sh_frac && h->sh_p > 0)))
                return suspend_merged(g, h);
            first_dram = 0;
            int emitted = 0;
            if (loop_cycle(g, c, &emitted) < 0)
                return -1;
            if (emitted)
                h->sh_valid = 0; /* a SimPy event was scheduled: SimPy's head may have moved */
            continue;
        }
        if (!have_h)
            return suspend_merged(g, h);
        const HRec *top = &h->heap[0];
        if (!h->sh_inf && !key_less(top->t, 0, 1, top->eid, h->sh_t, h->sh_frac, h->sh_p, h->sh_e))
            return suspend_merged(g, h);
        first_dram = 0;
        HRec r = hpop(h);
        if (set_env_now(g, h, r.t) < 0)
            return -1;
        if (host_act(h, &r) < 0)
            return -1;
    }
}

/* Loop._on_host(ev): SimPy callback of a proxy */
static PyObject *Loop_on_host(Loop *g, PyObject *ev)
{
    Host *h = g->host;
    if (!h)
        Py_RETURN_NONE;
    for (int i = 0; i < h->npx; i++) {
        if (h->px_obj[i] == ev) {
            Py_DECREF(h->px_obj[i]);
            h->npx--;
            h->px_t[i] = h->px_t[h->npx];
            h->px_e[i] = h->px_e[h->npx];
            h->px_obj[i] = h->px_obj[h->npx];
            break;
        }
    }
    if (g->running)
        Py_RETURN_NONE;
    g->running = 1;
    int rc = run_merged(g, 0);
    g->running = 0;
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* MemoryPort._drain for channel k (the callback of a space event) */
static PyObject *Loop_host_drain(Loop *g, PyObject *arg)
{
    Host *h = g->host;
    int k = (int)PyLong_AsLong(arg);
    if (k == -1 && PyErr_Occurred())
        return NULL;
    if (!h || k < 0 || k >= h->nch) {
        PyErr_SetString(PyExc_ValueError, "host_drain: no such channel");
        return NULL;
    }
    i64 now;
    if (now_ps(g->env, &now) < 0)
        return NULL;
    LineQ *q = &h->pq[k];
    Channel *s = h->ch[k];
    while (q->n > 0) {
        if (!can_accept_c(s, 0)) {
            if (host_wait_space(h, k) < 0)
                return NULL;
            break;
        }
        u64 line = q->v[q->head];
        q->head++;
        q->n--;
        if (q->n == 0)
            q->head = 0;
        if (host_submit(h, s, line, now) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ Python face */

static void host_free(Host *h)
{
    if (!h)
        return;
    Py_XDECREF(h->tags);
    Py_XDECREF(h->batch_end);
    Py_XDECREF(h->drains);
    Py_XDECREF(h->queue);
    Py_XDECREF(h->eid_it);
    Py_XDECREF(h->heappush);
    Py_XDECREF(h->on_host);
    Py_XDECREF(h->proxy_cls);
    for (int i = 0; i < h->npx; i++)
        Py_XDECREF(h->px_obj[i]);
    if (h->pq)
        for (int i = 0; i < h->nch; i++)
            PyMem_Free(h->pq[i].v);
    PyMem_Free(h->pq);
    PyMem_Free(h->ch);
    PyMem_Free(h->cores);
    PyMem_Free(h->heap);
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
    PyMem_Free(h->px_t);
    PyMem_Free(h->px_e);
    PyMem_Free(h->px_obj);
    PyMem_Free(h);
}

/* attach_host(channels, tags, line_bytes, hit_ps, to_next_ps, from_next_ps, cores, fill_buffers, static,
 *             batch_end, drains, queue, eid, heappush, proxy_cls) */
static PyObject *Loop_attach_host(Loop *g, PyObject *args)
{
    PyObject *chans, *tags, *batch_end, *drains, *queue, *eid_it, *heappush, *proxy_cls;
    long long line_bytes, hit_ps, to_next, from_next;
    int ncores, fill_buffers, static_sched;
    if (!PyArg_ParseTuple(args, "OOLLLLiipOOOOOO", &chans, &tags, &line_bytes, &hit_ps, &to_next, &from_next,
                          &ncores, &fill_buffers, &static_sched, &batch_end, &drains, &queue, &eid_it, &heappush,
                          &proxy_cls))
        return NULL;
    if (g->host || g->src_state != SRC_OFF) {
        PyErr_SetString(PyExc_RuntimeError, "the loop already has a host engine or a source");
        return NULL;
    }
    const ArchsimTagsAPI *api = PyCapsule_Import(ARCHSIM_TAGS_CAPSULE, 0);
    if (!api)
        return NULL;
    if ((PyObject *)Py_TYPE(tags) != (PyObject *)api->type) {
        PyErr_SetString(PyExc_TypeError, "attach_host: tags must be an LRUTags");
        return NULL;
    }
    if (!PyTuple_Check(chans) || PyTuple_GET_SIZE(chans) < 1 || !PyList_Check(drains) ||
        PyList_GET_SIZE(drains) != PyTuple_GET_SIZE(chans) || !PyList_Check(queue) || ncores < 1 ||
        fill_buffers < 1 || line_bytes < 1 || (line_bytes & (line_bytes - 1))) {
        PyErr_SetString(PyExc_ValueError, "attach_host: bad arguments");
        return NULL;
    }
    int nch = (int)PyTuple_GET_SIZE(chans);
    Host *h = PyMem_Calloc(1, sizeof(Host));
    if (!h)
        return PyErr_NoMemory();
    h->ch = PyMem_Calloc((size_t)nch, sizeof(Channel *));
    h->pq = PyMem_Calloc((size_t)nch, sizeof(LineQ));
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
    h->drains = Py_NewRef(drains);
    h->queue = Py_NewRef(queue);
    h->eid_it = Py_NewRef(eid_it);
    h->heappush = Py_NewRef(heappush);
    h->proxy_cls = Py_NewRef(proxy_cls);
    h->wfree = -1;
    h->on_host = PyObject_GetAttrString((PyObject *)g, "_on_host");
    if (!h->on_host || !PyIter_Check(eid_it)) {
        if (h->on_host)
            PyErr_SetString(PyExc_TypeError, "attach_host: eid must be an iterator");
        host_free(h);
        return NULL;
    }
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
    if (ensure_proxy(g, h) < 0)
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
