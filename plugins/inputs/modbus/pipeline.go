package modbus

import (
	"errors"
	"io"
	"net"
	"time"

	mb "github.com/simonvetter/modbus"
)

// Pipelined reads (max_in_flight > 1). The Modbus TCP implementation guide
// lets a client send several requests on a connection without waiting for
// each answer: the MBAP transaction id pairs answers with requests, and a
// device may answer them in any order. A poll then costs one write system
// call and one round trip per max_in_flight reads instead of one each,
// which is most of a poll's CPU on a fast link (every write wakes the
// peer) and most of its time on a slow one (8 round trips of a cellular
// link for 1,000 registers). RTU frames have no transaction id, and some
// devices and TCP-to-RTU gateways take one request at a time: opt-in.

// pipeRead is one read of a pipeline: the request, and what came of it.
type pipeRead struct {
	fc        byte
	addr, qty uint16 // first register or bit, and how many

	txn  uint16 // the transaction id it was sent with
	sent bool
	// done: the read has its outcome, regs or bits or err. A read not done
	// after ReadPipelined was sent but not answered before the stream
	// broke (or never sent): it is for the caller to send again, and
	// counts as no attempt.
	done bool
	regs []byte // FC3/FC4: the registers' bytes as sent
	bits []bool // FC1/FC2
	err  error
}

// pipeliner is a client that can have several reads in flight: the
// streamClient in Modbus TCP framing.
type pipeliner interface {
	// ReadPipelined sends the reads to the current unit in one write and
	// reads their answers in whatever order they come. It returns nil
	// when every read is done (with data or an exception). Else it
	// returns the error that left the stream untrustworthy (a timeout, a
	// closed or garbled stream, an answer that is not one to its request)
	// after charging it to one read, the read it concerns or else the
	// first unanswered one, so that a broken stream costs exactly one
	// read an attempt, as with one request in flight; the reads still
	// not done are to be sent again on a new connection.
	ReadPipelined(reads []pipeRead) error
}

var _ pipeliner = (*streamClient)(nil)

func (c *streamClient) ReadPipelined(reads []pipeRead) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return charge(reads, net.ErrClosed)
	}
	if c.framing != mbapFraming {
		// The configuration check refuses max_in_flight for RTU framing.
		return charge(reads, errors.New("pipelined reads need Modbus TCP framing"))
	}
	req := c.wbuf[:0]
	for i := range reads {
		rd := &reads[i]
		if rd.qty == 0 || rd.fc <= fcReadDiscrete && rd.qty > 2000 || rd.fc >= fcReadHolding && rd.qty > 125 {
			rd.done, rd.err = true, mb.ErrUnexpectedParameters
			continue
		}
		c.txn++
		rd.txn, rd.sent = c.txn, true
		req = appendMBAP(req, c.txn, c.unit, rd.fc, addrQty(rd.addr, rd.qty))
	}
	c.wbuf = req
	if len(req) == 0 {
		return nil
	}
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return charge(reads, err)
	}
	if _, err := c.conn.Write(req); err != nil {
		return charge(reads, ioError(err))
	}
	// Each answer has the timeout a single request has, counted from the
	// previous answer: a device works through a pipeline one request at
	// a time.
	return readMBAPAnswers(c.r, c.rbuf[:], c.unit, reads, func() error {
		return c.conn.SetDeadline(time.Now().Add(c.timeout))
	})
}

// readMBAPAnswers reads from r the answers to the reads sent and not done,
// pairing them by transaction id, into buf (maxFrame bytes). Frames of no
// outstanding transaction (a late or repeated answer) or of another
// protocol id are skipped, as readMBAPResponse does; answered is called
// after each answer (to renew the deadline). Its contract is
// pipeliner.ReadPipelined's.
func readMBAPAnswers(r io.Reader, buf []byte, unit byte, reads []pipeRead, answered func() error) error {
	left := 0
	for i := range reads {
		if reads[i].sent && !reads[i].done {
			left++
		}
	}
	for left > 0 {
		txn, ok, err := readMBAPFrame(r, buf)
		if err != nil {
			return charge(reads, err)
		}
		i := outstanding(reads, txn)
		if !ok || i < 0 {
			continue
		}
		rd := &reads[i]
		rd.done = true
		left--
		p, err := checkMBAPPDU(buf, unit, rd.fc)
		if err == nil {
			if rd.fc <= fcReadDiscrete {
				rd.bits, err = unpackBits(p, rd.qty)
			} else {
				rd.regs, err = registerBytes(p, rd.qty, 2*rd.qty)
			}
		}
		rd.err = err
		if err != nil && !isException(err) {
			// An answer to this request, but not one that fits it: the
			// two ends disagree, and what follows cannot be trusted.
			return err
		}
		if left > 0 {
			if err := answered(); err != nil {
				return charge(reads, err)
			}
		}
	}
	return nil
}

// outstanding is the index of the read sent as txn and not yet answered,
// or -1.
func outstanding(reads []pipeRead, txn uint16) int {
	for i := range reads {
		if reads[i].sent && !reads[i].done && reads[i].txn == txn {
			return i
		}
	}
	return -1
}

// charge gives err to the first read not done, and returns it.
func charge(reads []pipeRead, err error) error {
	for i := range reads {
		if !reads[i].done {
			reads[i].done, reads[i].err = true, err
			break
		}
	}
	return err
}

// readFC is the function code that reads the area: FC1 coils, FC2
// discrete inputs, FC3 holding and FC4 input registers.
func (a area) readFC() byte {
	return [...]byte{fcReadCoils, fcReadDiscrete, fcReadHolding, fcReadInput}[a]
}
