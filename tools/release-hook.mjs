// Trunk's post_build hook (Trunk.toml). Trunk starts all hooks of one stage at once, so steps that must run in
// order are one hook: first the bindings are shortened and index.html gets their integrity hashes
// (minify-bindings.mjs), then the final files are compressed (precompress.mjs). Debug builds are left alone.
if (process.env.TRUNK_PROFILE === 'release') {
    await import('./minify-bindings.mjs');
    await import('./precompress.mjs');
}
