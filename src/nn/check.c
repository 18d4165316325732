/* check.c: load-time validation: every operator, attribute value and input type must be supported. */
#include "nn/nn_internal.h"
#include <string.h>

static const char *const supported_ops[] = {
    "Conv", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
    "Mul", "Add", "Sub", "Div", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Concat",
    "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Gemm", "MatMul", "Softmax", "Identity",
    "Dropout", "Constant", "Shape", "Gather", "ReduceMean", "Cast", "Slice", "Pad", "LpNormalization", NULL};

static int is_supported(const char *op) {
    for (int i = 0; supported_ops[i]; i++)
        if (!strcmp(op, supported_ops[i])) return 1;
    return 0;
}

static int str_attr_is(const nn_node *n, const char *name, const char *const *ok) {
    const nn_attr *a = vt__nn_attr(n, name);
    if (!a) return 1;
    if (a->kind != NA_STRING) return 0;
    for (int i = 0; ok[i]; i++)
        if (!strcmp(a->s, ok[i])) return 1;
    return 0;
}

/* Contract: returns VT_EUNSUPPORTED naming the node, operator and attribute for the first thing
 * the engine cannot run; 0 when the whole graph is runnable (shape-dependent limits are checked
 * when the plan is built). */
int vt__nn_check_supported(const nn_graph *g) {
    static const char *const pads_ok[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", NULL};
    for (int i = 0; i < g->ninputs; i++) {
        const nn_value *v = &g->vals[g->inputs[i]];
        if (v->dtype && v->dtype != NN_FLOAT && v->dtype != NN_INT64 && v->dtype != NN_INT32)
            return vt__err(VT_EUNSUPPORTED, "graph input '%s': element type %s is not supported (only float, int64 and int32 inputs)",
                           v->name, v->dtype == NN_UINT8 ? "uint8" : v->dtype == NN_INT8 ? "int8" : v->dtype == NN_BOOL ? "bool" :
                           v->dtype == NN_DOUBLE ? "double" : v->dtype == 10 ? "float16" : "other");
    }
    for (int i = 0; i < g->nnodes; i++) {
        const nn_node *n = &g->nodes[i];
        if (!is_supported(n->op))
            return vt__err(VT_EUNSUPPORTED, "node '%s': operator %s is not supported", n->name, n->op);
        for (int a = 0; a < n->nattr; a++)
            if (n->attrs[a].kind == NA_OTHER)
                return vt__err(VT_EUNSUPPORTED, "node '%s' (%s): attribute '%s' has a type that is not supported", n->name,
                               n->op, n->attrs[a].name);
        const char *op = n->op;
        if ((!strcmp(op, "Conv") || !strcmp(op, "MaxPool") || !strcmp(op, "AveragePool")) &&
            !str_attr_is(n, "auto_pad", pads_ok))
            return vt__err(VT_EUNSUPPORTED, "node '%s' (%s): auto_pad '%s' is not supported", n->name, op,
                           vt__nn_attr(n, "auto_pad")->s ? vt__nn_attr(n, "auto_pad")->s : "?");
        if (!strcmp(op, "MaxPool")) {
            if (n->nout > 1 && n->out[1] >= 0)
                return vt__err(VT_EUNSUPPORTED, "node '%s' (MaxPool): the Indices output is not supported", n->name);
            if (vt__nn_attr_i(n, "storage_order", 0))
                return vt__err(VT_EUNSUPPORTED, "node '%s' (MaxPool): storage_order=1 is not supported", n->name);
        }
        if (!strcmp(op, "BatchNormalization")) {
            if (vt__nn_attr_i(n, "training_mode", 0))
                return vt__err(VT_EUNSUPPORTED, "node '%s' (BatchNormalization): training_mode=1 is not supported", n->name);
            for (int o = 1; o < n->nout; o++)
                if (n->out[o] >= 0)
                    return vt__err(VT_EUNSUPPORTED, "node '%s' (BatchNormalization): the mean/variance outputs are not supported",
                                   n->name);
            if (vt__nn_attr_i(n, "spatial", 1) != 1)
                return vt__err(VT_EUNSUPPORTED, "node '%s' (BatchNormalization): spatial=0 is not supported", n->name);
        }
        if (!strcmp(op, "LpNormalization")) {
            int64_t p = vt__nn_attr_i(n, "p", 2);
            if (p != 1 && p != 2)
                return vt__err(VT_EUNSUPPORTED, "node '%s' (LpNormalization): p=%lld is not supported (only 1 and 2)",
                               n->name, (long long)p);
        }
        if (!strcmp(op, "Dropout") && n->nout > 1 && n->out[1] >= 0)
            return vt__err(VT_EUNSUPPORTED, "node '%s' (Dropout): the mask output is not supported", n->name);
        if (!strcmp(op, "Pad")) {
            static const char *const modes[] = {"constant", NULL};
            if (!str_attr_is(n, "mode", modes))
                return vt__err(VT_EUNSUPPORTED, "node '%s' (Pad): mode '%s' is not supported", n->name, vt__nn_attr(n, "mode")->s);
        }
        if (!strcmp(op, "Constant")) {
            if (n->nattr != 1)
                return vt__err(VT_EUNSUPPORTED, "node '%s' (Constant): expected exactly one value attribute", n->name);
            const char *an = n->attrs[0].name;
            if (strcmp(an, "value") && strcmp(an, "value_float") && strcmp(an, "value_floats") && strcmp(an, "value_int") &&
                strcmp(an, "value_ints"))
                return vt__err(VT_EUNSUPPORTED, "node '%s' (Constant): attribute '%s' is not supported", n->name, an);
        }
        for (int o = 0; o < n->nout; o++)
            if (n->out[o] >= 0 && o > 0 && strcmp(op, "Dropout") && strcmp(op, "BatchNormalization") && strcmp(op, "MaxPool"))
                return vt__err(VT_EUNSUPPORTED, "node '%s' (%s): more than one output", n->name, op);
    }
    return 0;
}
