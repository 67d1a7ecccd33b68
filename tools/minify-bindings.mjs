// Shrinks what the dashboard's wasm and its wasm-bindgen glue (hamster-web-<hash>.js) say to each other, in a
// release build, and gives index.html the new files' integrity hashes. Trunk runs this after it has written the
// build to its staging directory (release-hook.mjs, Trunk's `post_build` hook), so what it changes is what lands
// in dist/.
//
// 1. The import names. wasm-bindgen names each of the few hundred functions the wasm imports from the glue after
//    the Rust item and a hash (`__wbg_addEventListener_847fd86b8c33ec43`), from a module named after the file
//    (`./hamster-web_bg.js`), and both names are written out twice: in the wasm's import section and as the keys of
//    the glue's import object. The hashes are random text that no compressor shortens. Each import gets a short
//    name (`a`, `b`, … `aa`, …) in both places, in the module `a`; the import section is rewritten in place and
//    every other byte of the wasm stays as it is. Emscripten's release builds do the same
//    (`--minify-imports-and-exports`). Exports keep their names.
// 2. The glue's code. wasm-bindgen writes readable JavaScript and trunk's own minifier barely shortens it;
//    esbuild, already used to bundle the chart library, does (local names, whitespace, syntax).
//
// Anything unexpected (no import object where it should be, an import the glue does not define) fails the build
// rather than ship a page that cannot link.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const staging = process.env.TRUNK_STAGING_DIR;
const fail = (why) => {
    console.error(`minify-bindings: ${why}`);
    process.exit(1);
};
if (!staging) fail('TRUNK_STAGING_DIR is not set (trunk runs this as a post_build hook)');
const esbuild = createRequire(import.meta.url)('esbuild-wasm');

const only = (pattern) => {
    const found = readdirSync(staging).filter((f) => pattern.test(f));
    if (found.length !== 1) fail(`expected one file matching ${pattern} in ${staging}, found ${found.length}`);
    return join(staging, found[0]);
};
const gluePath = only(/^hamster-web-[0-9a-f]+\.js$/);
const wasmPath = only(/^hamster-web-[0-9a-f]+_bg\.wasm$/);
const glueBefore = readFileSync(gluePath);
const wasmBefore = readFileSync(wasmPath);

// ---- the wasm's import section ----------------------------------------------------------------------------
function readLeb(bytes, at) {
    let value = 0;
    let shift = 0;
    for (;;) {
        const b = bytes[at++];
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if (b < 0x80) return [value, at];
    }
}
function leb(value) {
    const out = [];
    do {
        let b = value % 128;
        value = Math.floor(value / 128);
        if (value > 0) b |= 0x80;
        out.push(b);
    } while (value > 0);
    return out;
}
const utf8 = (s) => [...Buffer.from(s, 'utf8')];
const named = (s) => [...leb(Buffer.byteLength(s)), ...utf8(s)];
// `a` … `z`, `A` … `Z`, then two letters and more: valid JavaScript names, none of them reserved words.
function shortName(i) {
    const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
    let name = '';
    do {
        name = letters[i % 52] + name;
        i = Math.floor(i / 52) - 1;
    } while (i >= 0);
    return ['do', 'if', 'in'].includes(name) ? `${name}_` : name;
}
// The length of an import's description after its kind byte (function, table, memory, global, tag).
function descEnd(bytes, kind, at) {
    const limits = (p) => {
        const flags = bytes[p++];
        [, p] = readLeb(bytes, p);
        if (flags & 1) [, p] = readLeb(bytes, p);
        return p;
    };
    switch (kind) {
        case 0x00:
            return readLeb(bytes, at)[1];
        case 0x01:
            return limits(at + 1);
        case 0x02:
            return limits(at);
        case 0x03:
            return at + 2;
        case 0x04:
            return readLeb(bytes, at + 1)[1];
        default:
            return fail(`an import of unknown kind ${kind}`);
    }
}

const MODULE = 'a';
const renames = new Map(); // old field name -> short name
let moduleName = null;
const out = [wasmBefore.subarray(0, 8)];
let at = 8;
while (at < wasmBefore.length) {
    const id = wasmBefore[at];
    const [size, body] = readLeb(wasmBefore, at + 1);
    const end = body + size;
    if (id !== 2) {
        out.push(wasmBefore.subarray(at, end));
        at = end;
        continue;
    }
    let [count, p] = readLeb(wasmBefore, body);
    const section = [...leb(count)];
    for (let i = 0; i < count; i++) {
        let len;
        [len, p] = readLeb(wasmBefore, p);
        const module = wasmBefore.subarray(p, p + len).toString('utf8');
        p += len;
        [len, p] = readLeb(wasmBefore, p);
        const field = wasmBefore.subarray(p, p + len).toString('utf8');
        p += len;
        if (moduleName !== null && module !== moduleName) fail(`imports from two modules: ${moduleName}, ${module}`);
        moduleName = module;
        if (renames.has(field)) fail(`the import ${field} twice`);
        renames.set(field, shortName(renames.size));
        const kind = wasmBefore[p];
        const descStart = p;
        p = descEnd(wasmBefore, kind, p + 1);
        section.push(...named(MODULE), ...named(renames.get(field)), ...wasmBefore.subarray(descStart, p));
    }
    if (p !== end) fail('the import section did not parse to its end');
    out.push(Buffer.from([2, ...leb(section.length), ...section]));
    at = end;
}
if (moduleName === null) fail('the wasm imports nothing');
const wasmAfter = Buffer.concat(out);

// ---- the glue: the import object's keys and its module name, then esbuild ------------------------------------
let glue = glueBefore.toString('utf8');
const moduleKey = `${JSON.stringify(moduleName)}: import0,`;
if (glue.split(moduleKey).length !== 2) fail(`the glue does not hand over its imports as ${moduleKey}`);
glue = glue.replace(moduleKey, `${MODULE}: import0,`);
const objectStart = glue.indexOf('const import0 = {');
const objectEnd = glue.indexOf(`${MODULE}: import0,`);
if (objectStart < 0 || objectEnd < objectStart) fail('the glue has no import object where expected');
let object = glue.slice(objectStart, objectEnd);
for (const [field, short] of renames) {
    const key = new RegExp(`^(\\s+)${field.replace(/\$/g, '\\$')}:`, 'm');
    if (!key.test(object)) fail(`the glue's import object has no ${field}`);
    object = object.replace(key, `$1${short}:`);
}
glue = glue.slice(0, objectStart) + object + glue.slice(objectEnd);
const { code } = await esbuild.transform(glue, { minify: true, format: 'esm', target: 'es2020' });

writeFileSync(wasmPath, wasmAfter);
writeFileSync(gluePath, code);

// The page preloads both files with subresource-integrity hashes of what trunk wrote; a stale one would make the
// browser refuse the file.
const integrity = (bytes) => `sha384-${createHash('sha384').update(bytes).digest('base64')}`;
const htmlPath = join(staging, 'index.html');
let html = readFileSync(htmlPath, 'utf8');
for (const [before, after] of [
    [glueBefore, Buffer.from(code)],
    [wasmBefore, wasmAfter],
]) {
    const old = integrity(before);
    if (!html.includes(old)) fail(`index.html has no integrity ${old}`);
    html = html.split(old).join(integrity(after));
}
writeFileSync(htmlPath, html);
console.log(
    `minify-bindings: ${renames.size} imports renamed; wasm ${wasmBefore.length} -> ${wasmAfter.length} bytes, ` +
        `glue ${glueBefore.length} -> ${Buffer.byteLength(code)} bytes`,
);
