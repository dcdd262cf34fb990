// The "try it" widget's form for addition (toybook/browser.py): two 5-digit numbers →
// "x4 x3 x2 x1 x0 + y4 .. y0 = A5 .. A0", most significant digit first.
toybookTry.register("addition", {
  fields: [
    {name: "x", label: "x", kind: "int", min: 0, max: 99999, value: 12345},
    {name: "y", label: "y", kind: "int", min: 0, max: 99999, value: 67890},
  ],
  encode: (v) => {
    const digits = (n, width) => String(n).padStart(width, "0").split("").map(Number);
    const sum = digits(v.x + v.y, 6);
    return {tokens: [...digits(v.x, 5), 10, ...digits(v.y, 5), 12, ...sum], targets: sum};
  },
  answer: (tokens) => `x + y = ${tokens.join("")}`,
});
