/* The request path's text work in one call each, for ASCII text (most prompts): what
 * router/core/features.py (`hashed`), router/cache/embedders.py (`StaticEmbedder.embed`: its
 * WordPiece, word memo and sum) and router/core/classify.py (`Classifier.scores`) do in Python, which
 * stays the reference, the path for other text and the fallback when this module was not built.
 * The models' weights are handed over once, in capsules that hold their buffers. Inside the proxy each numpy
 * call and Python loop runs on caches LiteLLM's own work has just emptied: one pass here replaces
 * a dozen of them (tests/unit/test_native.py holds both paths to the same results).
 *
 * The tokenising rules are the Python ones restricted to ASCII: a lower-cased letter or digit run
 * is a word; for the embedder an underscore and every other character that is not white space
 * (Python's `\s`: \t \n \v \f \r \x1c-\x1f and space) is a piece of its own.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

/* zlib.crc32(data, crc): chained, crc32(b, crc32(a)) == crc32(a + b). */
static uint32_t crc32_update(uint32_t crc, const char *p, Py_ssize_t n) {
    crc = ~crc;
    while (n-- > 0) crc = crc_table[(crc ^ (unsigned char)*p++) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

static int is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

static int is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f'); }

/* The first `limit` characters of an ASCII str, lower-cased, in a new buffer (NULL: not ASCII). */
static char *lowered(PyObject *text, Py_ssize_t limit, Py_ssize_t *n) {
    if (!PyUnicode_Check(text) || !PyUnicode_IS_ASCII(text)) {
        PyErr_SetString(PyExc_ValueError, "the text must be an ASCII str");
        return NULL;
    }
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    *n = len < limit ? len : limit;
    const char *src = (const char *)PyUnicode_DATA(text);
    char *buf = PyMem_Malloc(*n + 1);
    if (buf == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < *n; i++) buf[i] = (src[i] >= 'A' && src[i] <= 'Z') ? src[i] + 32 : src[i];
    return buf;
}

typedef struct {
    Py_ssize_t start, len;
} Span;

/* A gram: one word (second == -1) or two words joined by a space. */
typedef struct {
    Py_ssize_t first, second;
    uint32_t crc;
    long count;
} Gram;

static int same_word(const char *buf, const Span *words, Py_ssize_t a, Py_ssize_t b) {
    return words[a].len == words[b].len && memcmp(buf + words[a].start, buf + words[b].start, words[a].len) == 0;
}

static int same_gram(const char *buf, const Span *words, const Gram *x, const Gram *y) {
    if ((x->second < 0) != (y->second < 0) || !same_word(buf, words, x->first, y->first)) return 0;
    return x->second < 0 || same_word(buf, words, x->second, y->second);
}

static Py_ssize_t table_size(Py_ssize_t items) {
    Py_ssize_t size = 16;
    while (size < 2 * items) size *= 2;
    return size;
}

/* Counts a gram into `grams` (first-seen order), deduplicated through the open-addressed `slots`. */
static void count_gram(const char *buf, const Span *words, Gram *grams, Py_ssize_t *distinct, Py_ssize_t *slots,
                       Py_ssize_t mask, Gram gram) {
    Py_ssize_t at = gram.crc & mask;
    while (slots[at] >= 0) {
        if (grams[slots[at]].crc == gram.crc && same_gram(buf, words, &grams[slots[at]], &gram)) {
            grams[slots[at]].count++;
            return;
        }
        at = (at + 1) & mask;
    }
    gram.count = 1;
    grams[*distinct] = gram;
    slots[at] = (*distinct)++;
}

/* The hashed grams of an ASCII text: `*used` buckets and their unit-length weights, in
 * first-seen order, as features.hashed. Both arrays are the caller's to free. 0, or -1 with an error set. */
static int hash_grams(PyObject *text, Py_ssize_t dims, Py_ssize_t max_chars, Py_ssize_t **buckets_out,
                      double **weights_out, Py_ssize_t *used_out) {
    if (dims <= 0) {
        PyErr_SetString(PyExc_ValueError, "dims must be positive");
        return -1;
    }
    Py_ssize_t n;
    char *buf = lowered(text, max_chars, &n);
    if (buf == NULL) return -1;
    int status = -1;
    Span *words = PyMem_Malloc(sizeof(Span) * (n / 2 + 1));
    uint32_t *crcs = PyMem_Malloc(sizeof(uint32_t) * (n / 2 + 1));
    Gram *grams = PyMem_Malloc(sizeof(Gram) * (n + 1));
    Py_ssize_t slots_n = table_size(n + 1);
    Py_ssize_t *slots = PyMem_Malloc(sizeof(Py_ssize_t) * slots_n);
    Py_ssize_t *bucket_slots = PyMem_Malloc(sizeof(Py_ssize_t) * slots_n);
    Py_ssize_t *buckets = PyMem_Malloc(sizeof(Py_ssize_t) * (n + 1));
    double *weights = PyMem_Malloc(sizeof(double) * (n + 1));
    if (!words || !crcs || !grams || !slots || !bucket_slots || !buckets || !weights) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n;) {
        if (!is_alnum(buf[i])) {
            i++;
            continue;
        }
        Py_ssize_t j = i;
        while (j < n && is_alnum(buf[j])) j++;
        words[m] = (Span){i, j - i};
        crcs[m++] = crc32_update(0, buf + i, j - i);
        i = j;
    }
    for (Py_ssize_t i = 0; i < slots_n; i++) slots[i] = bucket_slots[i] = -1;
    Py_ssize_t mask = slots_n - 1, distinct = 0;
    for (Py_ssize_t k = 0; k < m; k++) count_gram(buf, words, grams, &distinct, slots, mask, (Gram){k, -1, crcs[k], 0});
    for (Py_ssize_t k = 0; k + 1 < m; k++) {
        uint32_t crc = crc32_update(crc32_update(crcs[k], " ", 1), buf + words[k + 1].start, words[k + 1].len);
        count_gram(buf, words, grams, &distinct, slots, mask, (Gram){k, k + 1, crc, 0});
    }
    Py_ssize_t used = 0;
    for (Py_ssize_t g = 0; g < distinct; g++) {
        Py_ssize_t index = (Py_ssize_t)(grams[g].crc % (uint64_t)dims);
        double weight = grams[g].count > 1 ? 1.0 + log((double)grams[g].count) : 1.0;
        Py_ssize_t at = index & mask;
        while (bucket_slots[at] >= 0 && buckets[bucket_slots[at]] != index) at = (at + 1) & mask;
        if (bucket_slots[at] < 0) {
            bucket_slots[at] = used;
            buckets[used] = index;
            weights[used++] = 0.0;
        }
        weights[bucket_slots[at]] += weight;
    }
    double sum = 0.0;
    for (Py_ssize_t b = 0; b < used; b++) sum += weights[b] * weights[b];
    double norm = sqrt(sum);
    if (norm == 0.0) norm = 1.0;
    for (Py_ssize_t b = 0; b < used; b++) weights[b] /= norm;
    *buckets_out = buckets;
    *weights_out = weights;
    *used_out = used;
    buckets = NULL;
    weights = NULL;
    status = 0;
done:
    PyMem_Free(buf);
    PyMem_Free(words);
    PyMem_Free(crcs);
    PyMem_Free(grams);
    PyMem_Free(slots);
    PyMem_Free(bucket_slots);
    PyMem_Free(buckets);
    PyMem_Free(weights);
    return status;
}

/* hashed_ascii(text, dims, max_chars) -> (buckets, weights), as features.hashed. */
static PyObject *hashed_ascii(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t dims, max_chars, used;
    Py_ssize_t *buckets;
    double *weights;
    if (!PyArg_ParseTuple(args, "Unn", &text, &dims, &max_chars)) return NULL;
    if (hash_grams(text, dims, max_chars, &buckets, &weights, &used) < 0) return NULL;
    PyObject *result = NULL, *bucket_list = PyList_New(used), *weight_list = PyList_New(used);
    for (Py_ssize_t b = 0; bucket_list != NULL && weight_list != NULL && b < used; b++) {
        PyObject *index = PyLong_FromSsize_t(buckets[b]), *weight = PyFloat_FromDouble(weights[b]);
        if (index == NULL || weight == NULL) {
            Py_XDECREF(index);
            Py_XDECREF(weight);
            goto done;
        }
        PyList_SET_ITEM(bucket_list, b, index);
        PyList_SET_ITEM(weight_list, b, weight);
    }
    if (bucket_list != NULL && weight_list != NULL) result = PyTuple_Pack(2, bucket_list, weight_list);
done:
    Py_XDECREF(bucket_list);
    Py_XDECREF(weight_list);
    PyMem_Free(buckets);
    PyMem_Free(weights);
    return result;
}

/* The vocabulary of a WordPiece model as an open-addressed table of its pieces' bytes, so that
 * splitting a new word (a number, a name, an identifier: most words are in the memo already) asks
 * no Python dict and makes no str per candidate. Built once, with the static model. */
typedef struct {
    uint64_t hash;
    const char *bytes; /* into `pool` */
    Py_ssize_t len;
    long id; /* -1: an empty slot */
} Piece;

typedef struct {
    Piece *slots;
    Py_ssize_t mask;
    char *pool;
    Py_ssize_t longest_first, longest_rest; /* the longest piece that starts a word, and "##" one (without "##") */
} Vocab;

static uint64_t fnv1a(const char *p, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ull;
    while (n-- > 0) h = (h ^ (unsigned char)*p++) * 1099511628211ull;
    return h;
}

static long vocab_find(const Vocab *vocab, const char *p, Py_ssize_t n) {
    uint64_t h = fnv1a(p, n);
    for (Py_ssize_t at = (Py_ssize_t)(h & (uint64_t)vocab->mask);; at = (at + 1) & vocab->mask) {
        const Piece *piece = &vocab->slots[at];
        if (piece->id < 0) return -1;
        if (piece->hash == h && piece->len == n && memcmp(piece->bytes, p, n) == 0) return piece->id;
    }
}

static void vocab_free(Vocab *vocab) {
    if (vocab == NULL) return;
    PyMem_Free(vocab->slots);
    PyMem_Free(vocab->pool);
    PyMem_Free(vocab);
}

/* The table of a vocabulary dict (str -> id); NULL with an error set. */
static Vocab *vocab_of(PyObject *dict) {
    PyObject *key, *value;
    Py_ssize_t count = PyDict_GET_SIZE(dict), pool_size = 0, pos = 0;
    while (PyDict_Next(dict, &pos, &key, &value)) {
        Py_ssize_t n;
        if (!PyUnicode_Check(key) || PyUnicode_AsUTF8AndSize(key, &n) == NULL || !PyLong_Check(value)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "the vocabulary maps str to int");
            return NULL;
        }
        pool_size += n;
    }
    Vocab *vocab = PyMem_Calloc(1, sizeof(Vocab));
    Py_ssize_t size = table_size(count);
    if (vocab != NULL) {
        vocab->slots = PyMem_Malloc(sizeof(Piece) * size);
        vocab->pool = PyMem_Malloc(pool_size + 1);
    }
    if (vocab == NULL || vocab->slots == NULL || vocab->pool == NULL) {
        vocab_free(vocab);
        PyErr_NoMemory();
        return NULL;
    }
    vocab->mask = size - 1;
    for (Py_ssize_t i = 0; i < size; i++) vocab->slots[i].id = -1;
    char *end = vocab->pool;
    for (pos = 0; PyDict_Next(dict, &pos, &key, &value);) {
        Py_ssize_t n;
        const char *bytes = PyUnicode_AsUTF8AndSize(key, &n);
        long id = PyLong_AsLong(value);
        if (id < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a piece id is negative");
            vocab_free(vocab);
            return NULL;
        }
        memcpy(end, bytes, n);
        uint64_t h = fnv1a(end, n);
        Py_ssize_t at = (Py_ssize_t)(h & (uint64_t)vocab->mask);
        while (vocab->slots[at].id >= 0) at = (at + 1) & vocab->mask;
        vocab->slots[at] = (Piece){h, end, n, id};
        end += n;
        int rest = n >= 2 && bytes[0] == '#' && bytes[1] == '#';
        if (rest && n - 2 > vocab->longest_rest) vocab->longest_rest = n - 2;
        if (n > vocab->longest_first) vocab->longest_first = n; /* a bound: "##" pieces never start a word here */
    }
    return vocab;
}

/* The word pieces of one word, as the tokenizer's WordPiece model makes them: the longest prefix
 * in the vocabulary, then the longest continuation ("##" + ...) of the rest, and so on; the unknown
 * piece alone when some rest has none or the word is longer than `max_chars`. A new tuple. */
static PyObject *word_pieces(const char *p, Py_ssize_t len, const Vocab *vocab, long unk, Py_ssize_t max_chars) {
    if (len > max_chars) return Py_BuildValue("(l)", unk);
    long *ids = PyMem_Malloc(sizeof(long) * (len + 1));
    char *candidate = PyMem_Malloc(len + 2); /* "##" then the rest of the word: a first piece is read after it */
    if (ids == NULL || candidate == NULL) {
        PyMem_Free(ids);
        PyMem_Free(candidate);
        return PyErr_NoMemory();
    }
    memcpy(candidate, "##", 2);
    Py_ssize_t count = 0;
    int known = 1;
    for (Py_ssize_t start = 0; known && start < len;) {
        Py_ssize_t prefix = start > 0 ? 2 : 0, longest = start > 0 ? vocab->longest_rest : vocab->longest_first;
        Py_ssize_t end = len - start > longest ? start + longest : len; /* no piece is longer */
        long id = -1;
        memcpy(candidate + 2, p + start, end - start);
        for (; end > start; end--)
            if ((id = vocab_find(vocab, candidate + 2 - prefix, prefix + end - start)) >= 0) break;
        if (id < 0) known = 0;
        else ids[count++] = id;
        start = end;
    }
    PyObject *pieces = known ? PyTuple_New(count) : Py_BuildValue("(l)", unk);
    for (Py_ssize_t k = 0; known && pieces != NULL && k < count; k++) {
        PyObject *id = PyLong_FromLong(ids[k]);
        if (id == NULL) Py_CLEAR(pieces);
        else PyTuple_SET_ITEM(pieces, k, id);
    }
    PyMem_Free(ids);
    PyMem_Free(candidate);
    return pieces;
}

/* The pieces of one token, from the memo or worked out (then remembered; the memo is emptied
 * when it holds `memo_words`, as StaticEmbedder does). A new reference, or NULL. */
static PyObject *pieces_of(const char *p, Py_ssize_t len, PyObject *memo, const Vocab *vocab, long unk,
                           Py_ssize_t max_chars, Py_ssize_t memo_words) {
    PyObject *word = PyUnicode_FromStringAndSize(p, len);
    if (word == NULL) return NULL;
    PyObject *pieces = PyDict_GetItemWithError(memo, word);
    if (pieces != NULL) {
        Py_INCREF(pieces);
    } else if (!PyErr_Occurred()) {
        pieces = word_pieces(p, len, vocab, unk, max_chars);
        if (pieces != NULL && PyDict_GET_SIZE(memo) >= memo_words) PyDict_Clear(memo);
        if (pieces != NULL && PyDict_SetItem(memo, word, pieces) < 0) Py_CLEAR(pieces);
    }
    Py_DECREF(word);
    return pieces;
}

/* A C-contiguous float32 matrix (or vector: cols 1) from a buffer. */
static int float_matrix(PyObject *obj, Py_buffer *view, Py_ssize_t *rows, Py_ssize_t *cols, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->itemsize != 4 || view->format == NULL || strcmp(view->format, "f") != 0 || view->ndim < 1 ||
        view->ndim > 2) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous float32 array of one or two dimensions", what);
        PyBuffer_Release(view);
        return -1;
    }
    *rows = view->shape[0];
    *cols = view->ndim == 2 ? view->shape[1] : 1;
    return 0;
}

/* A static embedding model: its vocabulary, its table of piece vectors (held for the capsule's
 * life, so that a request asks numpy for nothing) and its WordPiece settings. */
typedef struct {
    Vocab *vocab;
    Py_buffer table;
    Py_ssize_t rows, dims, max_word;
    long unk;
} Static;

static void static_free(PyObject *capsule) {
    Static *model = PyCapsule_GetPointer(capsule, "router.static");
    if (model == NULL) return;
    vocab_free(model->vocab);
    PyBuffer_Release(&model->table);
    PyMem_Free(model);
}

/* static_model(vocab, unk, max_word, table) -> capsule: `vocab` maps pieces to ids, `unk` is the
 * unknown piece's id, `max_word` the longest word WordPiece splits, `table` the float32 rows. */
static PyObject *static_model(PyObject *self, PyObject *args) {
    PyObject *dict, *table;
    long unk;
    Py_ssize_t max_word;
    if (!PyArg_ParseTuple(args, "O!lnO", &PyDict_Type, &dict, &unk, &max_word, &table)) return NULL;
    Static *model = PyMem_Calloc(1, sizeof(Static));
    if (model == NULL) return PyErr_NoMemory();
    if (float_matrix(table, &model->table, &model->rows, &model->dims, "table") < 0) {
        PyMem_Free(model);
        return NULL;
    }
    model->unk = unk;
    model->max_word = max_word;
    model->vocab = vocab_of(dict);
    PyObject *capsule = model->vocab != NULL ? PyCapsule_New(model, "router.static", static_free) : NULL;
    if (capsule == NULL) {
        vocab_free(model->vocab);
        PyBuffer_Release(&model->table);
        PyMem_Free(model);
    }
    return capsule;
}

/* embed_ascii(model, text, memo, max_tokens, max_chars, memo_words) -> bytearray | None: the
 * unit-length sum of the table rows of the text's first `max_tokens` word pieces (float32), None
 * when it has none; as StaticEmbedder.embed. */
static PyObject *embed_ascii(PyObject *self, PyObject *args) {
    PyObject *capsule, *text, *memo;
    Py_ssize_t max_tokens, max_chars, memo_words;
    if (!PyArg_ParseTuple(args, "OUO!nnn", &capsule, &text, &PyDict_Type, &memo, &max_tokens, &max_chars,
                          &memo_words))
        return NULL;
    const Static *model = PyCapsule_GetPointer(capsule, "router.static");
    if (model == NULL) return NULL;
    Py_ssize_t n, dims = model->dims;
    char *buf = lowered(text, max_chars, &n);
    PyObject *result = NULL;
    float *sum = PyMem_Calloc(dims, sizeof(float));
    if (buf == NULL || sum == NULL) {
        if (sum == NULL) PyErr_NoMemory();
        goto done;
    }
    const float *rows = (const float *)model->table.buf;
    Py_ssize_t taken = 0;
    for (Py_ssize_t i = 0; i < n && taken < max_tokens;) {
        Py_ssize_t j = i + 1;
        if (is_space(buf[i])) {
            i = j;
            continue;
        }
        if (is_alnum(buf[i]))
            while (j < n && is_alnum(buf[j])) j++;
        PyObject *pieces = pieces_of(buf + i, j - i, memo, model->vocab, model->unk, model->max_word, memo_words);
        if (pieces == NULL) goto done;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(pieces) && taken < max_tokens; k++) {
            Py_ssize_t id = PyLong_AsSsize_t(PyTuple_GET_ITEM(pieces, k));
            if (id < 0 || id >= model->rows) {
                if (!PyErr_Occurred()) PyErr_Format(PyExc_IndexError, "piece id %zd is not in the table", id);
                Py_DECREF(pieces);
                goto done;
            }
            const float *row = rows + id * dims;
            for (Py_ssize_t d = 0; d < dims; d++) sum[d] += row[d];
            taken++;
        }
        Py_DECREF(pieces);
        i = j;
    }
    if (taken == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    double squares = 0.0;
    for (Py_ssize_t d = 0; d < dims; d++) squares += (double)sum[d] * sum[d];
    float norm = squares > 0.0 ? (float)sqrt(squares) : 1.0f;
    result = PyByteArray_FromStringAndSize(NULL, dims * (Py_ssize_t)sizeof(float));
    if (result == NULL) goto done;
    float *out = (float *)PyByteArray_AS_STRING(result);
    for (Py_ssize_t d = 0; d < dims; d++) out[d] = sum[d] / norm;
done:
    PyMem_Free(buf);
    PyMem_Free(sum);
    return result;
}

/* The route classifier's weights, held for the capsule's life. */
typedef struct {
    Py_buffer embedding, bias, words;
    Py_ssize_t labels, dims, buckets;
    double scale;
} Linear;

static void linear_free(PyObject *capsule) {
    Linear *model = PyCapsule_GetPointer(capsule, "router.linear");
    if (model == NULL) return;
    PyBuffer_Release(&model->embedding);
    PyBuffer_Release(&model->bias);
    PyBuffer_Release(&model->words);
    PyMem_Free(model);
}

/* linear_model(embedding_weights, bias, word_weights, scale) -> capsule */
static PyObject *linear_model(PyObject *self, PyObject *args) {
    PyObject *embedding, *bias, *words;
    double scale;
    if (!PyArg_ParseTuple(args, "OOOd", &embedding, &bias, &words, &scale)) return NULL;
    Linear *model = PyMem_Calloc(1, sizeof(Linear));
    if (model == NULL) return PyErr_NoMemory();
    Py_ssize_t bias_n, one, word_labels;
    int got = 0;
    if (float_matrix(embedding, &model->embedding, &model->labels, &model->dims, "embedding_weights") == 0) got++;
    if (got == 1 && float_matrix(bias, &model->bias, &bias_n, &one, "bias") == 0) got++;
    if (got == 2 && float_matrix(words, &model->words, &model->buckets, &word_labels, "word_weights") == 0) got++;
    if (got == 3 && (bias_n != model->labels || word_labels != model->labels)) {
        PyErr_SetString(PyExc_ValueError, "the classifier's weights do not fit together");
        got = -got;
    }
    PyObject *capsule = got == 3 ? PyCapsule_New(model, "router.linear", linear_free) : NULL;
    if (capsule == NULL) {
        got = got < 0 ? -got : got;
        if (got > 2) PyBuffer_Release(&model->words);
        if (got > 1) PyBuffer_Release(&model->bias);
        if (got > 0) PyBuffer_Release(&model->embedding);
        PyMem_Free(model);
        return NULL;
    }
    model->scale = scale;
    return capsule;
}

/* The linear scores of a vector and hashed words: bias + scale * embedding @ vector + weights @
 * words[buckets], per label, as a list. */
static PyObject *linear_scores(const Linear *model, PyObject *vector_obj, const Py_ssize_t *buckets,
                               const double *weights, Py_ssize_t used) {
    Py_buffer vector;
    Py_ssize_t n, one;
    if (float_matrix(vector_obj, &vector, &n, &one, "vector") < 0) return NULL;
    PyObject *result = NULL;
    double *logits = NULL;
    if (n != model->dims || vector.ndim != 1) {
        PyErr_SetString(PyExc_ValueError, "the vector does not fit the classifier");
        goto done;
    }
    Py_ssize_t labels = model->labels, dims = model->dims;
    logits = PyMem_Calloc(labels, sizeof(double));
    if (logits == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const float *v = vector.buf, *e = model->embedding.buf, *w = model->words.buf, *b = model->bias.buf;
    for (Py_ssize_t l = 0; l < labels; l++) {
        double dot = 0.0;
        for (Py_ssize_t d = 0; d < dims; d++) dot += (double)e[l * dims + d] * v[d];
        logits[l] = b[l] + model->scale * dot;
    }
    for (Py_ssize_t k = 0; k < used; k++) {
        if (buckets[k] < 0 || buckets[k] >= model->buckets) {
            PyErr_SetString(PyExc_IndexError, "a bucket is outside word_weights");
            goto done;
        }
        for (Py_ssize_t l = 0; l < labels; l++) logits[l] += weights[k] * w[buckets[k] * labels + l];
    }
    result = PyList_New(labels);
    for (Py_ssize_t l = 0; result != NULL && l < labels; l++) {
        PyObject *value = PyFloat_FromDouble(logits[l]);
        if (value == NULL) Py_CLEAR(result);
        else PyList_SET_ITEM(result, l, value);
    }
done:
    PyMem_Free(logits);
    PyBuffer_Release(&vector);
    return result;
}

/* scores(model, vector, buckets, weights) -> list[float]: for hashed words worked out in Python. */
static PyObject *scores(PyObject *self, PyObject *args) {
    PyObject *capsule, *vector, *bucket_list, *weight_list;
    if (!PyArg_ParseTuple(args, "OOO!O!", &capsule, &vector, &PyList_Type, &bucket_list, &PyList_Type, &weight_list))
        return NULL;
    const Linear *model = PyCapsule_GetPointer(capsule, "router.linear");
    if (model == NULL) return NULL;
    Py_ssize_t used = PyList_GET_SIZE(bucket_list);
    if (PyList_GET_SIZE(weight_list) != used) {
        PyErr_SetString(PyExc_ValueError, "buckets and weights differ in length");
        return NULL;
    }
    Py_ssize_t *buckets = PyMem_Malloc(sizeof(Py_ssize_t) * (used + 1));
    double *weights = PyMem_Malloc(sizeof(double) * (used + 1));
    PyObject *result = NULL;
    if (buckets == NULL || weights == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < used; k++) {
        buckets[k] = PyLong_AsSsize_t(PyList_GET_ITEM(bucket_list, k));
        weights[k] = PyFloat_AsDouble(PyList_GET_ITEM(weight_list, k));
        if (PyErr_Occurred()) goto done;
    }
    result = linear_scores(model, vector, buckets, weights, used);
done:
    PyMem_Free(buckets);
    PyMem_Free(weights);
    return result;
}

/* scores_ascii(model, vector, text, max_chars) -> list[float]: the text's words hashed here, into
 * as many buckets as the model has rows. */
static PyObject *scores_ascii(PyObject *self, PyObject *args) {
    PyObject *capsule, *vector, *text;
    Py_ssize_t max_chars, used;
    if (!PyArg_ParseTuple(args, "OOUn", &capsule, &vector, &text, &max_chars)) return NULL;
    const Linear *model = PyCapsule_GetPointer(capsule, "router.linear");
    if (model == NULL) return NULL;
    Py_ssize_t *buckets;
    double *weights;
    if (hash_grams(text, model->buckets, max_chars, &buckets, &weights, &used) < 0) return NULL;
    PyObject *result = linear_scores(model, vector, buckets, weights, used);
    PyMem_Free(buckets);
    PyMem_Free(weights);
    return result;
}

static PyMethodDef methods[] = {
    {"hashed_ascii", hashed_ascii, METH_VARARGS, "features.hashed for an ASCII text"},
    {"static_model", static_model, METH_VARARGS, "a static embedding model for embed_ascii"},
    {"embed_ascii", embed_ascii, METH_VARARGS, "StaticEmbedder.embed for an ASCII text"},
    {"linear_model", linear_model, METH_VARARGS, "a route classifier for scores and scores_ascii"},
    {"scores", scores, METH_VARARGS, "the classifier's linear scores of a vector and hashed words"},
    {"scores_ascii", scores_ascii, METH_VARARGS, "the classifier's linear scores of a vector and an ASCII text"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void) {
    crc_init();
    return PyModule_Create(&module);
}
