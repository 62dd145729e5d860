// Command durstat reads Go durations, one per line, and prints their median,
// 90th percentile and maximum; bench/reload.sh uses it on Portico's reload log.
package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"time"
)

func main() {
	var ds []time.Duration
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if d, err := time.ParseDuration(sc.Text()); err == nil {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		fmt.Println("no durations")
		return
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1))] }
	fmt.Printf("median %v, p90 %v, max %v (n=%d)\n", at(0.5).Round(time.Millisecond), at(0.9).Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond), len(ds))
}
