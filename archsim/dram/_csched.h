/*
 * _csched.h: the event heap of the compiled engines that run inside a DRAM loop (issue #15), part of the
 * _cchannel translation unit (included by _cchannel.c after the cycle loop).  Its clients: the host engine
 * (_chost.h: a CPU host's cores, LLC and memory port) and the NMP engine (_cnmp.h: rank, bank-group and bank
 * units).  Each is a compiled copy of Python components that stay the reference; the results must be the same
 * bit for bit.
 *
 * How the order of events is kept.  Every event the reference schedules becomes a record in this heap with the
 * reference's key: its time, NORMAL priority and an insertion id drawn from SimPy's own counter (env._eid) at
 * the instant the reference would schedule it.  SimPy's heap compares only that key, so the two heaps together
 * pop in the reference's global order.  run_merged runs the records, and the loop's DRAM cycles, in merged
 * order (a cycle edge is an URGENT wake-up in the reference: it comes before NORMAL records of its picosecond)
 * for as long as they come before the first entry of SimPy's queue that is not the engines' own; then it
 * returns to SimPy with one entry there for its next item: the loop's wake-up (as before) and a proxy whose key
 * is exactly that of the heap's head (no insertion id of its own, so no id is shifted).  A DRAM request of an
 * engine is a slot with no Python object (Req.host); its completion draws its id where complete_at would.
 * The DRAM loop's own wake-ups that the reference schedules while the engines run are not scheduled: they only
 * take insertion ids, and skipping ids does not change the order of the others.
 */

/* a scheduled action: (t, eid) is the reference's key (priority NORMAL); the rest is the client's */
typedef struct {
    i64 t, eid;
    i64 b, c;
    int kind, a;
} HRec;

/* record kinds: the host engine's below NK_BASE, the NMP engine's from it; SK_DRAIN: an engine's drain after a
 * channel's space notification */
enum { HK_LINE, HK_SEND, HK_FDATA, HK_FILL, SK_DRAIN = 15, NK_BASE = 16, NK_DELIVER = NK_BASE, NK_POOL, NK_DATA,
       NK_BAGDONE };

struct Sched {
    PyObject *queue, *eid_it, *heappush, *on_sched, *proxy_cls;
    HRec *heap;
    int nheap, capheap;
    /* proxies in SimPy's queue: key and object */
    i64 *px_t, *px_e;
    PyObject **px_obj;
    int npx, cappx;
    /* SimPy's head (ours excluded), cached until something may have pushed onto SimPy's queue */
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

/* a FIFO of int64 values (the requests a port holds back, a switch output's queue) */
typedef struct {
    i64 *v;
    int head, n, cap;
} Fifo;

static int fifo_push(Fifo *q, i64 x)
{
    if (q->head + q->n >= q->cap) {
        if (q->head > 0) {
            memmove(q->v, q->v + q->head, (size_t)q->n * sizeof(i64));
            q->head = 0;
        }
        if (q->n >= q->cap && grow((void **)&q->v, &q->cap, sizeof(i64), q->n + 1) < 0)
            return -1;
    }
    q->v[q->head + q->n++] = x;
    return 0;
}

/* the first value of a non-empty FIFO, taken out */
static inline i64 fifo_pop(Fifo *q)
{
    i64 x = q->v[q->head++];
    if (--q->n == 0)
        q->head = 0;
    return x;
}

/* An entry from a pool of `size`-byte records whose int at `next_off` links the free ones (*freeh: the first
 * free, -1 none); the pool grows when none is free.  The index of the entry, its link set to -1; -1 on error. */
static int fl_take(void **pool, int *cap, int *freeh, size_t size, size_t next_off)
{
    if (*freeh < 0) {
        int old = *cap;
        if (grow(pool, cap, size, old + 1) < 0)
            return -1;
        for (int i = old; i < *cap; i++)
            *(int *)((char *)*pool + (size_t)i * size + next_off) = i + 1 < *cap ? i + 1 : -1;
        *freeh = old;
    }
    int i = *freeh;
    int *link = (int *)((char *)*pool + (size_t)i * size + next_off);
    *freeh = *link;
    *link = -1;
    return i;
}

/* Channel s's accept cycle for a request submitted at `now` (ChannelController.submit): the next edge, not before
 * the channel's next cycle, the refreshes an idle channel skipped caught up first. */
static int accept_cycle(Channel *s, i64 now, i64 *c_out)
{
    i64 c = now / s->tck + 1;
    if (c < s->cycle)
        c = s->cycle;
    if (s->wake_cycle >= NEVER && s->next_ref < c && catch_up(s, c) < 0)
        return -1;
    *c_out = c;
    return 0;
}

/* a read slot of channel s for an engine's request (host 1 or 2, index: the engine's tag; group: the slot of the
 * multi-burst request it belongs to, or -1), accepted at cycle c and queued; -1 on error */
static int engine_read(Channel *s, u64 addr, i64 c, int host, i64 index, int group)
{
    int slot = req_alloc(s);
    if (slot < 0)
        return -1;
    Req *r = &s->reqs[slot];
    int ch, fb, row, col;
    decode(s, addr, &ch, &fb, &row, &col);
    r->addr = addr;
    r->is_write = 0;
    r->fb = fb;
    r->row = row;
    r->col = col;
    r->cmd = s->rd_cmd;
    r->added = c;
    r->index = index;
    r->host = host;
    r->grp = group;
    r->refs = 1; /* held while being queued */
    if (group >= 0)
        s->reqs[group].refs++; /* each burst holds its request */
    int rc = enqueue(s, slot, c);
    req_unref(s, slot);
    return rc;
}

/* An engine's wait for queue space on channel s (MemoryPort's mem.space_event(req).callbacks.append(drain)): a
 * marker in the channel's list of space waiters, an int (engine << 24 | e << 12 | k) where the reference has an
 * event; notify_space turns it into a record at the key the event would take (engine_space). */
static int engine_wait_space(Channel *s, int engine, int e, int k)
{
    PyObject *mark = PyLong_FromLong(((long)engine << 24) | ((long)e << 12) | (long)k);
    if (!mark)
        return -1;
    int rc = PyList_Append(s->space_waiters, mark);
    Py_DECREF(mark);
    return rc;
}

/* ------------------------------------------------------------------------------------------ reads in flight */
/* LineBuffer.pending of a cache near a datapath (an NMP rank cache, the PIFS switch buffer): the lines being read
 * (keyed by unit and address) and the parts waiting for each, in the order they joined.  Open addressing with
 * backward-shift deletion; waiters in a free-list pool. */

typedef struct {
    u64 addr;
    int unit, head, tail; /* head: -2 empty, -1 no waiter yet */
} NPend;

typedef struct {
    i64 part;
    int next;
} NWait;

typedef struct {
    NPend *t;
    int cap, count;
    NWait *w;
    int capw, wfree;
} PendMap;

static inline int pm_home(const PendMap *m, int unit, u64 addr)
{
    return (int)(((addr * 0x9E3779B97F4A7C15ULL) ^ ((u64)unit * 0xC2B2AE3D27D4EB4FULL)) >> 40) & (m->cap - 1);
}

/* the entry of (unit, addr), or ~(the free entry where it would go) */
static int pm_find(const PendMap *m, int unit, u64 addr)
{
    int mask = m->cap - 1;
    int i = pm_home(m, unit, addr);
    while (m->t[i].head != -2) {
        if (m->t[i].addr == addr && m->t[i].unit == unit)
            return i;
        i = (i + 1) & mask;
    }
    return ~i;
}

static int pm_grow(PendMap *m)
{
    NPend *old = m->t;
    int oldcap = m->cap;
    int cap = oldcap ? oldcap * 2 : 1024;
    NPend *p = PyMem_Malloc((size_t)cap * sizeof(NPend));
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < cap; i++)
        p[i].head = -2;
    m->t = p;
    m->cap = cap;
    for (int i = 0; i < oldcap; i++)
        if (old[i].head != -2)
            m->t[~pm_find(m, old[i].unit, old[i].addr)] = old[i];
    PyMem_Free(old);
    return 0;
}

/* LineBuffer.lookup past a tag miss: 1 the part waits for the read in flight (MERGED), 0 a read starts (MISS) */
static int pm_join(PendMap *m, int unit, u64 addr, i64 part)
{
    if (2 * (m->count + 1) > m->cap && pm_grow(m) < 0)
        return -1;
    int e = pm_find(m, unit, addr);
    if (e >= 0) {
        int wi = fl_take((void **)&m->w, &m->capw, &m->wfree, sizeof(NWait), offsetof(NWait, next));
        if (wi < 0)
            return -1;
        m->w[wi].part = part;
        NPend *p = &m->t[e];
        if (p->head < 0)
            p->head = wi;
        else
            m->w[p->tail].next = wi;
        p->tail = wi;
        return 1;
    }
    e = ~e;
    m->t[e].addr = addr;
    m->t[e].unit = unit;
    m->t[e].head = -1;
    m->t[e].tail = -1;
    m->count++;
    return 0;
}

/* LineBuffer.fill's pop: the read of (unit, addr) is here; its first waiter (-1: none, -2: no such read) */
static int pm_take(PendMap *m, int unit, u64 addr)
{
    int i = pm_find(m, unit, addr);
    if (i < 0)
        return -2;
    int head = m->t[i].head;
    int mask = m->cap - 1, j = i;
    m->count--;
    for (;;) { /* backward-shift deletion */
        m->t[i].head = -2;
        for (;;) {
            j = (j + 1) & mask;
            if (m->t[j].head == -2)
                return head;
            int home = pm_home(m, m->t[j].unit, m->t[j].addr);
            if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
                continue;
            break;
        }
        m->t[i] = m->t[j];
        i = j;
    }
}

/* the next waiter after wi, wi going back to the pool */
static inline int pm_next(PendMap *m, int wi, i64 *part)
{
    *part = m->w[wi].part;
    int nxt = m->w[wi].next;
    m->w[wi].next = m->wfree;
    m->wfree = wi;
    return nxt;
}

static void pm_free(PendMap *m)
{
    PyMem_Free(m->t);
    PyMem_Free(m->w);
}

/* next(env._eid): the insertion id SimPy's env.schedule would take now */
static inline int draw_eid(Sched *h, i64 *out)
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
static int hpush(Sched *h, i64 t, int kind, int a, i64 b, i64 c)
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

static HRec hpop(Sched *h)
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

static inline int is_ours(Loop *g, Sched *h, PyObject *ev)
{
    if (ev == g->wake_ev)
        return 1;
    for (int i = 0; i < h->npx; i++)
        if (h->px_obj[i] == ev)
            return 1;
    return 0;
}

/* the first entry of SimPy's queue that is not the engines' (the loop's wake-up, the proxies): a best-first
 * walk of the heap from the root that opens an entry of ours into its two children */
static int simpy_head(Loop *g, Sched *h)
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
static int ensure_proxy(Loop *g, Sched *h)
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
    PyList_SET_ITEM(cbs, 0, Py_NewRef(h->on_sched));
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

static int set_env_now(Loop *g, Sched *h, i64 t)
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

/* the clients' actions (_chost.h, _cnmp.h) */
static int sched_act(Loop *g, const HRec *r);

/* ------------------------------------------------------------------------------------------ the merged run */

/* Return to SimPy: the loop's wake-up at its next cycle (kept if one is pending for that time) and a proxy for
 * the heap's next record. */
static int suspend_merged(Loop *g, Sched *h)
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

/* The loop's DRAM cycles and the heap's records in merged order, while they come before SimPy's next entry.
 * `first_dram`: started by the loop's wake-up, whose cycle is processed whatever SimPy holds at its time (as
 * run_loop's first item). */
static int run_merged(Loop *g, int first_dram)
{
    Sched *h = g->sched;
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
        if (sched_act(g, &r) < 0)
            return -1;
    }
}

/* A Python callback's run of the loop: the merged run (`merged`: records and cycles, `first_dram` as
 * run_merged) or the plain cycle loop up to `horizon`, with `running` set so that callbacks from inside it do
 * not start another. */
static PyObject *run_from_python(Loop *g, int merged, int first_dram, i64 horizon)
{
    g->running = 1;
    int rc = merged ? run_merged(g, first_dram) : run_loop(g, horizon);
    g->running = 0;
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Loop._on_sched(ev): SimPy callback of a proxy */
static PyObject *Loop_on_sched(Loop *g, PyObject *ev)
{
    Sched *h = g->sched;
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
    return run_from_python(g, 1, 0, 0);
}

static void sched_free(Sched *h)
{
    if (!h)
        return;
    Py_XDECREF(h->queue);
    Py_XDECREF(h->eid_it);
    Py_XDECREF(h->heappush);
    Py_XDECREF(h->on_sched);
    Py_XDECREF(h->proxy_cls);
    for (int i = 0; i < h->npx; i++)
        Py_XDECREF(h->px_obj[i]);
    PyMem_Free(h->heap);
    PyMem_Free(h->px_t);
    PyMem_Free(h->px_e);
    PyMem_Free(h->px_obj);
    PyMem_Free(h);
}

static int sched_traverse(Sched *h, visitproc visit, void *arg)
{
    if (!h)
        return 0;
    Py_VISIT(h->queue);
    Py_VISIT(h->eid_it);
    Py_VISIT(h->heappush);
    Py_VISIT(h->on_sched);
    Py_VISIT(h->proxy_cls);
    for (int i = 0; i < h->npx; i++)
        Py_VISIT(h->px_obj[i]);
    return 0;
}

/* the loop's heap (made by the first engine that attaches): SimPy's queue, its id counter, heapq.heappush and
 * the class of the proxies */
static Sched *sched_get(Loop *g, PyObject *queue, PyObject *eid_it, PyObject *heappush, PyObject *proxy_cls)
{
    if (g->sched)
        return g->sched;
    if (!PyList_Check(queue) || !PyIter_Check(eid_it)) {
        PyErr_SetString(PyExc_TypeError, "the engine needs SimPy's queue (a list) and its id counter");
        return NULL;
    }
    Sched *h = PyMem_Calloc(1, sizeof(Sched));
    if (!h) {
        PyErr_NoMemory();
        return NULL;
    }
    h->on_sched = PyObject_GetAttrString((PyObject *)g, "_on_sched");
    if (!h->on_sched) {
        PyMem_Free(h);
        return NULL;
    }
    h->queue = Py_NewRef(queue);
    h->eid_it = Py_NewRef(eid_it);
    h->heappush = Py_NewRef(heappush);
    h->proxy_cls = Py_NewRef(proxy_cls);
    h->env_now = -1;
    g->sched = h;
    return h;
}
