package gptfast4j.server;

import com.sun.net.httpserver.HttpExchange;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

/**
 * Whether the client of a request that has not been answered yet is still there: a request without a stream writes
 * nothing until its generation ends, so a client that gave up (curl's Ctrl-C, an HTTP client's timeout) would keep the
 * engine generating for nobody, up to the context's end. llama.cpp's server polls the socket for that; the JDK's
 * HttpServer gives no way to, so this reads the connection's channel out of its implementation (opened to us by the
 * jar's {@code Add-Opens}; where it is not, {@link #of} returns a watch that never sees the client go).
 * <p>
 * Only the request's own thread calls {@link #gone}, while the server does nothing with the connection: the request
 * body has been read and the response not begun.
 */
final class ClientWatch {
    /** {@code HttpExchangeImpl.impl}, {@code ExchangeImpl.getConnection()}, {@code HttpConnection.getChannel()}; null where not open to us. */
    private static final Field IMPL;
    private static final Method CONNECTION, CHANNEL;

    static {
        Field impl = null;
        Method connection = null, channel = null;
        try {
            impl = Class.forName("sun.net.httpserver.HttpExchangeImpl").getDeclaredField("impl");
            connection = Class.forName("sun.net.httpserver.ExchangeImpl").getDeclaredMethod("getConnection");
            channel = Class.forName("sun.net.httpserver.HttpConnection").getDeclaredMethod("getChannel");
            impl.setAccessible(true);
            connection.setAccessible(true);
            channel.setAccessible(true);
        } catch (ReflectiveOperationException | RuntimeException e) {
            impl = null; // another JDK's server, or the package not opened (java without -jar): no watch
        }
        IMPL = impl;
        CONNECTION = connection;
        CHANNEL = channel;
    }

    /** A watch that never sees its client go. */
    static final ClientWatch NONE = new ClientWatch(null);

    private final SocketChannel channel;
    private final ByteBuffer one = ByteBuffer.allocate(1);
    /** Set when the client sent more bytes after its request (the next one, pipelined), which this took: see {@link #tookBytes}. */
    private boolean tookBytes;
    /** Set when the channel's blocking mode could not be changed: the watch stops. */
    private boolean unwatchable;

    private ClientWatch(SocketChannel channel) {
        this.channel = channel;
    }

    /** The watch of {@code exchange}'s connection, or {@link #NONE}. */
    static ClientWatch of(HttpExchange exchange) {
        if (IMPL == null || !IMPL.getDeclaringClass().isInstance(exchange)) return NONE;
        try {
            return new ClientWatch((SocketChannel) CHANNEL.invoke(CONNECTION.invoke(IMPL.get(exchange))));
        } catch (ReflectiveOperationException | RuntimeException e) {
            return NONE;
        }
    }

    /**
     * Whether the client closed its side of the connection (or it was reset): with no bytes waiting, a read that does
     * not wait returns the end of the stream, taking nothing. Bytes waiting are a request sent before this one was
     * answered (HTTP/1.1 pipelining, which no common client does for a POST): the watch stops, the bytes left for the
     * server. Should such bytes arrive between the look and the read, the read takes one of them; then
     * {@link #tookBytes} tells the server to close the connection after its response, as a pipelining client must be
     * ready to be told.
     */
    boolean gone() {
        if (channel == null || tookBytes || unwatchable) return false;
        synchronized (channel.blockingLock()) {
            try {
                // bytes waiting are the client's next request (pipelined), which the server reads after this one: the
                // client is there, and the read below would take one of them
                if (channel.socket().getInputStream().available() > 0) {
                    unwatchable = true;
                    return false;
                }
            } catch (IOException | RuntimeException e) {
                unwatchable = true;
                return false;
            }
            boolean blocking = channel.isBlocking();
            try {
                if (blocking) channel.configureBlocking(false);
            } catch (IOException | RuntimeException e) {
                unwatchable = true; // a channel this cannot read without waiting: the server's, left as it was
                return false;
            }
            try {
                int read = channel.read(one.clear());
                if (read > 0) tookBytes = true;
                return read < 0;
            } catch (IOException e) {
                return true; // reset by the peer
            } catch (RuntimeException e) {
                unwatchable = true;
                return false;
            } finally {
                try {
                    if (blocking) channel.configureBlocking(true);
                } catch (IOException | RuntimeException e) {
                    unwatchable = true; // the response's write then fails as the client's absence would make it
                }
            }
        }
    }

    /** Whether {@link #gone} took bytes of a next request: the response must close the connection. */
    boolean tookBytes() {
        return tookBytes;
    }
}
