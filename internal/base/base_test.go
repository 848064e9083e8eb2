package base

import "testing"

func TestPositionOrder(t *testing.T) {
	cases := []struct {
		p, q Position
		want int
	}{
		{Position{1, 5}, Position{1, 5}, 0},
		{Position{1, 5}, Position{1, 6}, -1},
		{Position{2, 0}, Position{1, 99}, 1},
		{Position{1, InvalidEntry}, Position{1, 0}, -1},
	}
	for _, c := range cases {
		if got := c.p.Compare(c.q); got != c.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", c.p, c.q, got, c.want)
		}
		if got := c.q.Compare(c.p); got != -c.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", c.q, c.p, got, -c.want)
		}
	}
}
