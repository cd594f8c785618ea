/* The hardware hash's record walk, compiled: the one loop of intake that Python runs ~20 times a row
 * (about 3 us a row, a sixth of a row's CPU in one process). Exactly the walk of shared/intake/hwhash.py's
 * _walk_python, which stays the reference and the fallback; tests/unit/test_hwwalk_native.py holds the
 * two equal on valid, damaged and random hashes.
 *
 * walk(raw, total) -> (0, serial, manufacturer, model, tpm)   the records tile exactly to total
 *                                                             (the values of the last record 14, 16, 17
 *                                                             as bytes without their trailing NULs, None
 *                                                             when absent; tpm: 25 or 11 seen)
 *                   | (1, pos, length)                        record at pos has a length under 4
 *                   | (2, end)                                the records run to end, not to total
 * raw: a contiguous buffer of bytes (bytes, bytearray, a memoryview of them); total: an int with
 * 4 <= total and total + 4 <= len(raw) (else ValueError). decode() passes bytes and an int.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

enum { SERIAL = 14, MANUFACTURER = 16, MODEL = 17, OFFLINE_DEVICE_ID = 11, TPM_EK = 25 };

static PyObject *walk(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t total;
    if (!PyArg_ParseTuple(args, "y*n:walk", &view, &total)) {
        return NULL;
    }
    if (total < 4 || total > view.len - 4) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "walk: total must be at least 4 and leave 4 bytes after it");
        return NULL;
    }
    const unsigned char *raw = (const unsigned char *)view.buf;
    Py_ssize_t pos = 4, serial = -1, manufacturer = -1, model = -1;
    int tpm = 0;
    PyObject *result;
    while (pos < total) { /* pos < total <= len - 4: the 4-byte header is inside the buffer */
        Py_ssize_t length = raw[pos + 2] | raw[pos + 3] << 8;
        if (length < 4) {
            result = Py_BuildValue("(inn)", 1, pos, length);
            PyBuffer_Release(&view);
            return result;
        }
        switch (raw[pos]) {
        case SERIAL: serial = pos; break;
        case MANUFACTURER: manufacturer = pos; break;
        case MODEL: model = pos; break;
        case OFFLINE_DEVICE_ID: case TPM_EK: tpm = 1; break;
        default: break;
        }
        pos += length;
    }
    if (pos != total) {
        PyBuffer_Release(&view);
        return Py_BuildValue("(in)", 2, pos);
    }
    PyObject *values[3] = {NULL, NULL, NULL};
    Py_ssize_t at[3] = {serial, manufacturer, model};
    for (int i = 0; i < 3; i++) {
        if (at[i] < 0) {
            values[i] = Py_NewRef(Py_None);
            continue;
        }
        Py_ssize_t start = at[i] + 4, end = at[i] + (raw[at[i] + 2] | raw[at[i] + 3] << 8);
        while (end > start && raw[end - 1] == 0) { /* the value without its trailing NULs */
            end--;
        }
        values[i] = PyBytes_FromStringAndSize((const char *)raw + start, end - start);
        if (values[i] == NULL) {
            for (int j = 0; j < i; j++) {
                Py_DECREF(values[j]);
            }
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    PyBuffer_Release(&view);
    /* "N" hands the new references to the tuple */
    return Py_BuildValue("(iNNNO)", 0, values[0], values[1], values[2], tpm ? Py_True : Py_False);
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, "Walk a decoded hardware hash's records (see native/hwwalk.c)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_hwwalk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__hwwalk(void) { return PyModule_Create(&module); }
