// The "try it" widget's form for majority (toybook/browser.py): up to 128 values in 0..9;
// the answer at each position is the most frequent value so far, ties to the smallest.
toybookTry.register("majority", {
  fields: [
    {name: "values", label: "values", kind: "list", min: 0, max: 9, length: [1, 128],
     value: [3, 1, 1, 3, 0, 3, 7, 3]},
  ],
  encode: (v) => {
    const counts = new Array(10).fill(0), targets = [];
    for (const value of v.values) {
      counts[value] += 1;
      targets.push(counts.indexOf(Math.max(...counts)));
    }
    return {tokens: v.values.slice(), targets};
  },
  answer: (tokens) => `majority so far = ${tokens[tokens.length - 1]}`,
});
