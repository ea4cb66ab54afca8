package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Tiny line charts written with the standard library alone: a 5x7 bitmap
// font, lines, markers and a legend, encoded with image/png.

type series struct {
	Name   string
	X, Y   []float64
	Color  color.RGBA
	Dashed bool
}

type chart struct {
	Title, XLabel, YLabel string
	XTicks                []float64 // x values to label (log scale)
	Series                []series
}

var palette = []color.RGBA{
	{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255}, {148, 103, 189, 255},
	{255, 127, 14, 255}, {23, 190, 207, 255}, {140, 86, 75, 255}, {127, 127, 127, 255},
}

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grey  = color.RGBA{225, 225, 225, 255}
)

// glyphs is a 5x7 font: each glyph is seven rows of five pixels.
var glyphs = map[rune][7]string{
	'A':  {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'B':  {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."},
	'C':  {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."},
	'D':  {"####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."},
	'E':  {"#####", "#....", "#....", "####.", "#....", "#....", "#####"},
	'F':  {"#####", "#....", "#....", "####.", "#....", "#....", "#...."},
	'G':  {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"},
	'H':  {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'I':  {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'J':  {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."},
	'K':  {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"},
	'L':  {"#....", "#....", "#....", "#....", "#....", "#....", "#####"},
	'M':  {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"},
	'N':  {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"},
	'O':  {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'P':  {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."},
	'Q':  {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"},
	'R':  {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"},
	'S':  {".####", "#....", "#....", ".###.", "....#", "....#", "####."},
	'T':  {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."},
	'U':  {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'V':  {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."},
	'W':  {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."},
	'X':  {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"},
	'Y':  {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."},
	'Z':  {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"},
	'0':  {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."},
	'1':  {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'2':  {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"},
	'3':  {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."},
	'4':  {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."},
	'5':  {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."},
	'6':  {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."},
	'7':  {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."},
	'8':  {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."},
	'9':  {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."},
	' ':  {".....", ".....", ".....", ".....", ".....", ".....", "....."},
	'.':  {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."},
	',':  {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."},
	':':  {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."},
	'/':  {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."},
	'(':  {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."},
	')':  {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."},
	'-':  {".....", ".....", ".....", "#####", ".....", ".....", "....."},
	'+':  {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."},
	'%':  {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"},
	'=':  {".....", ".....", "#####", ".....", "#####", ".....", "....."},
	'_':  {".....", ".....", ".....", ".....", ".....", ".....", "#####"},
	'>':  {".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."},
	'<':  {"...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."},
	'*':  {".....", "..#..", "#.#.#", ".###.", "#.#.#", "..#..", "....."},
	'\'': {"..#..", "..#..", ".#...", ".....", ".....", ".....", "....."},
}

// text draws s at (x, y) (top left) with pixels scale wide; letters are
// drawn in capitals.
func text(img *image.RGBA, x, y, scale int, s string, c color.RGBA) {
	for _, r := range strings.ToUpper(s) {
		g, ok := glyphs[r]
		if !ok {
			g = glyphs['*']
		}
		for row, line := range g {
			for col, px := range line {
				if px == '#' {
					fill(img, x+col*scale, y+row*scale, scale, scale, c)
				}
			}
		}
		x += 6 * scale
	}
}

func textWidth(s string, scale int) int { return len([]rune(s)) * 6 * scale }

func fill(img *image.RGBA, x, y, w, h int, c color.RGBA) {
	r := image.Rect(x, y, x+w, y+h).Intersect(img.Bounds())
	for yy := r.Min.Y; yy < r.Max.Y; yy++ {
		for xx := r.Min.X; xx < r.Max.X; xx++ {
			img.SetRGBA(xx, yy, c)
		}
	}
}

// line draws a thick line; dashed lines skip every other 8-pixel stretch.
func line(img *image.RGBA, x0, y0, x1, y1, width int, c color.RGBA, dashed bool) {
	dx, dy := math.Abs(float64(x1-x0)), math.Abs(float64(y1-y0))
	steps := int(math.Max(dx, dy))
	if steps == 0 {
		fill(img, x0-width/2, y0-width/2, width, width, c)
		return
	}
	for i := 0; i <= steps; i++ {
		if dashed && (i/8)%2 == 1 {
			continue
		}
		x := x0 + int(math.Round(float64(x1-x0)*float64(i)/float64(steps)))
		y := y0 + int(math.Round(float64(y1-y0)*float64(i)/float64(steps)))
		fill(img, x-width/2, y-width/2, width, width, c)
	}
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func shortNum(v float64) string {
	switch {
	case v >= 1e6:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e6), ".0") + "M"
	case v >= 1e3:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e3), ".0") + "k"
	case v >= 10 || v == 0:
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

// draw renders the chart into the rectangle r of img.
func (ch chart) draw(img *image.RGBA, r image.Rectangle) {
	const left, right, top, bottom = 90, 330, 64, 60
	plot := image.Rect(r.Min.X+left, r.Min.Y+top, r.Max.X-right, r.Max.Y-bottom)
	text(img, r.Min.X+left, r.Min.Y+8, 2, ch.Title, black)
	text(img, r.Min.X+8, plot.Min.Y-30, 2, ch.YLabel, black)
	text(img, plot.Min.X+(plot.Dx()-textWidth(ch.XLabel, 2))/2, plot.Max.Y+36, 2, ch.XLabel, black)

	maxY := 0.0
	var xs []float64
	for _, s := range ch.Series {
		for i, y := range s.Y {
			maxY = math.Max(maxY, y)
			xs = append(xs, s.X[i])
		}
	}
	xs = append(xs, ch.XTicks...)
	if len(xs) == 0 {
		return
	}
	maxY = niceMax(maxY * 1.05)
	lo, hi := math.Log10(slices.Min(xs)), math.Log10(slices.Max(xs))
	if hi-lo < 1e-9 {
		lo, hi = lo-1, hi+1
	}
	pad := (hi - lo) * 0.05
	lo, hi = lo-pad, hi+pad
	px := func(x float64) int {
		return plot.Min.X + int(math.Round((math.Log10(x)-lo)/(hi-lo)*float64(plot.Dx())))
	}
	py := func(y float64) int { return plot.Max.Y - int(math.Round(y/maxY*float64(plot.Dy()))) }

	// Grid and y labels.
	for i := 0; i <= 5; i++ {
		v := maxY * float64(i) / 5
		y := py(v)
		line(img, plot.Min.X, y, plot.Max.X, y, 1, grey, false)
		l := shortNum(v)
		text(img, plot.Min.X-10-textWidth(l, 2), y-7, 2, l, black)
	}
	for _, x := range ch.XTicks {
		xx := px(x)
		line(img, xx, plot.Min.Y, xx, plot.Max.Y, 1, grey, false)
		l := shortNum(x)
		text(img, xx-textWidth(l, 2)/2, plot.Max.Y+10, 2, l, black)
	}
	line(img, plot.Min.X, plot.Min.Y, plot.Min.X, plot.Max.Y, 2, black, false)
	line(img, plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y, 2, black, false)

	for i, s := range ch.Series {
		for j := range s.X {
			x, y := px(s.X[j]), py(s.Y[j])
			fill(img, x-4, y-4, 9, 9, s.Color)
			if j > 0 {
				line(img, px(s.X[j-1]), py(s.Y[j-1]), x, y, 3, s.Color, s.Dashed)
			}
		}
		ly := plot.Min.Y + 10 + i*26
		line(img, plot.Max.X+20, ly+6, plot.Max.X+50, ly+6, 3, s.Color, s.Dashed)
		text(img, plot.Max.X+58, ly, 2, s.Name, black)
	}
}

func savePNG(path string, img image.Image) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func canvas(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill(img, 0, 0, w, h, white)
	return img
}

// writePlots draws throughput vs concurrency (ingest and its ceilings) and
// claim latency and throughput vs queue size.
func (r *Results) writePlots(dir string) error {
	// Ingest.
	var ss []series
	add := func(name string, dashed bool, pick func(x Row) bool) {
		var s series
		for _, x := range r.Rows {
			if pick(x) && x.Rate > 0 {
				s.X = append(s.X, float64(x.Concurrency))
				s.Y = append(s.Y, x.Rate)
			}
		}
		if len(s.X) > 0 {
			s.Name, s.Dashed, s.Color = name, dashed, palette[len(ss)%len(palette)]
			ss = append(ss, s)
		}
	}
	for _, st := range []string{"bolt", "redis"} {
		add(st+" ingest single", false, func(x Row) bool { return x.Section == "ingest" && x.Store == st && x.Batch == 0 })
		add(fmt.Sprintf("%s ingest batch%d", st, r.batchSize()), false, func(x Row) bool { return x.Section == "ingest" && x.Store == st && x.Batch > 0 })
	}
	add("bbolt group commit", true, func(x Row) bool { return x.Section == "ceiling" && x.Name == ceilGC })
	add("bbolt Batch", true, func(x Row) bool { return x.Section == "ceiling" && x.Name == ceilBatch })
	add("redis EVALSHA", true, func(x Row) bool { return x.Section == "ceiling" && x.Name == ceilEval })
	var ticks []float64
	for _, x := range r.Rows {
		if x.Section == "ingest" && !slices.Contains(ticks, float64(x.Concurrency)) {
			ticks = append(ticks, float64(x.Concurrency))
		}
	}
	img := canvas(1200, 640)
	chart{Title: "Durable ingest vs concurrency (dashed: ceilings, same run)", XLabel: "concurrent clients (log)",
		YLabel: "msg/s", XTicks: ticks, Series: ss}.draw(img, img.Bounds())
	if err := savePNG(filepath.Join(dir, "bench-ingest.png"), img); err != nil {
		return err
	}

	// Claim.
	var lat, thr []series
	var qticks []float64
	for _, st := range []string{"bolt", "redis"} {
		var agents []int
		for _, x := range r.Rows {
			if x.Section == "claim" && x.Store == st && !slices.Contains(agents, x.Concurrency) {
				agents = append(agents, x.Concurrency)
			}
		}
		for _, a := range agents {
			var p99, p50, cps series
			for _, x := range r.Rows {
				if x.Section == "claim" && x.Store == st && x.Concurrency == a {
					q := float64(x.Queue)
					p99.X, p99.Y = append(p99.X, q), append(p99.Y, x.P99ms)
					p50.X, p50.Y = append(p50.X, q), append(p50.Y, x.P50ms)
					cps.X, cps.Y = append(cps.X, q), append(cps.Y, x.Rate)
					if !slices.Contains(qticks, q) {
						qticks = append(qticks, q)
					}
				}
			}
			c := palette[len(thr)%len(palette)]
			p99.Name, p99.Color = fmt.Sprintf("%s p99, %d agents", st, a), c
			p50.Name, p50.Color, p50.Dashed = fmt.Sprintf("%s p50, %d agents", st, a), c, true
			cps.Name, cps.Color = fmt.Sprintf("%s %d agents", st, a), c
			lat = append(lat, p99, p50)
			thr = append(thr, cps)
		}
	}
	img = canvas(1200, 1100)
	chart{Title: "Claim-next latency vs queue size", XLabel: "queued threads (log)", YLabel: "ms",
		XTicks: qticks, Series: lat}.draw(img, image.Rect(0, 0, 1200, 560))
	chart{Title: "Claim + reply + release cycles vs queue size", XLabel: "queued threads (log)", YLabel: "cycles/s",
		XTicks: qticks, Series: thr}.draw(img, image.Rect(0, 560, 1200, 1100))
	return savePNG(filepath.Join(dir, "bench-claim.png"), img)
}

func (r *Results) batchSize() int {
	for _, x := range r.Rows {
		if x.Batch > 0 {
			return x.Batch
		}
	}
	return 0
}
