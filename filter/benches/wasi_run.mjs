// Runs a wasm32-wasip1 command module under Node's WASI:
//   node --no-liftoff filter/benches/wasi_run.mjs [--dir HOST_DIR] X.wasm [ARGS...]
// (--no-liftoff: V8 compiles every function with its optimizing tier up front, as Envoy starts V8).
// --dir makes HOST_DIR readable by the module under the same path.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

let argv = process.argv.slice(2);
const preopens = {};
while (argv[0] === '--dir') {
  preopens[argv[1]] = argv[1];
  argv = argv.slice(2);
}
const [file, ...args] = argv;
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: {}, preopens });
const module = await WebAssembly.compile(await readFile(file));
// The filter library links its proxy-wasm shell too; a command module never calls it, so its
// env.proxy_* imports are stubs that fail loudly if they ever are.
const imports = wasi.getImportObject();
for (const i of WebAssembly.Module.imports(module)) {
  if (i.kind === 'function' && !(imports[i.module] && imports[i.module][i.name])) {
    imports[i.module] ??= {};
    imports[i.module][i.name] = () => { throw new Error(`${i.module}.${i.name} is not provided`); };
  }
}
const instance = await WebAssembly.instantiate(module, imports);
// The shell's reactor entry (_initialize) is linked in too; run the command entry only.
const { memory, _start } = instance.exports;
wasi.start({ exports: { memory, _start } });
