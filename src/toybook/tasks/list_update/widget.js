// The "try it" widget's form for list_update (toybook/browser.py):
// a = [a0, a1, a2]; a[idx] = elt → "BOS a0 a1 a2 NL idx elt NL b0 b1 b2".
toybookTry.register("list_update", {
  fields: [
    {name: "a", label: "list a", kind: "list", min: 0, max: 49, length: [3, 3], value: [17, 3, 42]},
    {name: "idx", label: "idx", kind: "int", min: 0, max: 2, value: 1},
    {name: "elt", label: "elt", kind: "int", min: 0, max: 49, value: 8},
  ],
  encode: (v) => {
    const b = v.a.slice();
    b[v.idx] = v.elt;
    return {tokens: [50, ...v.a, 51, v.idx, v.elt, 51, ...b], targets: b};
  },
  answer: (tokens) => `b = [${tokens.join(", ")}]`,
});
