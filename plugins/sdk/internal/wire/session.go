package wire

import "net"

// SessionFDEnv names the environment variable that tells a plugin process
// which inherited file descriptor is its session socket.
const SessionFDEnv = "EDGEPIPE_SESSION_FD"

// SessionHello is what a plugin writes on its session socket first: the
// protocol's name and the version of its framing.
const SessionHello = "edgepipe-session 1\n"

// Greet writes SessionHello on the plugin's end of a session socket.
func Greet(plugin net.Conn) error {
	_, err := plugin.Write([]byte(SessionHello))
	return err
}
