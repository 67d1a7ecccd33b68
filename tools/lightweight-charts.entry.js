// The chart library as the dashboard ships it: only what web/src/chart/lwc.rs binds, so the bundler can leave out
// the series kinds and plugins the page never uses (the standalone build carries them all). `npm run chart`
// bundles this into dist/lightweight-charts.js, the global `LightweightCharts` that web/index.html loads.
export { createChart, CandlestickSeries, LineSeries, HistogramSeries } from 'lightweight-charts';
