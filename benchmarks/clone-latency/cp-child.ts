/** child_process.fork peer: receives its share over IPC, sums it (or only acknowledges it), reports back. */
process.on('message', (m: { data: Float64Array; sum: boolean }) => {
  let s = 0;
  if (m.sum) for (let i = 0; i < m.data.length; i++) s += m.data[i];
  process.send?.(s, () => process.exit(0));
});
