// The "try it" widget's form for max_of_2 (toybook/browser.py): two numbers → "a b =".
toybookTry.register("max_of_2", {
  fields: [
    {name: "a", label: "a", kind: "int", min: 0, max: 63, value: 17},
    {name: "b", label: "b", kind: "int", min: 0, max: 63, value: 5},
  ],
  encode: (v) => ({tokens: [v.a, v.b, 64], targets: [Math.max(v.a, v.b)]}),
  answer: (tokens) => `max = ${tokens[0]}`,
});
