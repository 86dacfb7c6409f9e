package im.starling.android;

import android.os.PowerManager;

import org.unifiedpush.android.connector.FailedReason;
import org.unifiedpush.android.connector.PushService;
import org.unifiedpush.android.connector.data.PushEndpoint;
import org.unifiedpush.android.connector.data.PushMessage;

/**
 * UnifiedPush events, forwarded to the core as they are. The instance is the account's JID.
 * All decisions live in Rust (starling-android receiver.rs, starling_core on_unified_push).
 */
public class PushReceiver extends PushService {
    static {
        System.loadLibrary("starling_android");
    }

    // Keep in step with starling-android src/receiver.rs.
    private static final int NEW_ENDPOINT = 0;
    private static final int MESSAGE = 1;
    private static final int UNREGISTERED = 2;
    private static final int REGISTRATION_FAILED = 3;

    @Override
    public void onCreate() {
        super.onCreate();
        // The process may have started for this push alone: the secrets key first.
        SecretKeeper.install(this);
    }

    /** Handles one event; blocks until done (at most receiver::WAKE_TIMEOUT). */
    private static native String nativeEvent(String filesDir, String instance, int kind, String value);

    @Override
    public void onNewEndpoint(PushEndpoint endpoint, String instance) {
        forward(instance, NEW_ENDPOINT, endpoint.getUrl());
    }

    @Override
    public void onMessage(PushMessage message, String instance) {
        // The content is not read: a Starling gateway's wakeup carries nothing.
        forward(instance, MESSAGE, null);
    }

    @Override
    public void onUnregistered(String instance) {
        forward(instance, UNREGISTERED, null);
    }

    @Override
    public void onRegistrationFailed(FailedReason reason, String instance) {
        forward(instance, REGISTRATION_FAILED, reason.name());
    }

    private void forward(String instance, int kind, String value) {
        final String files = getFilesDir().getAbsolutePath();
        // Callbacks come on the main thread, and the native side connects and waits: a
        // thread of its own, with the CPU kept awake until it is done (bounded by the
        // native timeout; the lock's own timeout is the backstop).
        final PowerManager power = (PowerManager) getSystemService(POWER_SERVICE);
        final PowerManager.WakeLock awake =
                power.newWakeLock(PowerManager.PARTIAL_WAKE_LOCK, "starling:push");
        awake.acquire(10_000L);
        new Thread(() -> {
            try {
                nativeEvent(files, instance, kind, value);
            } finally {
                if (awake.isHeld()) {
                    awake.release();
                }
            }
        }, "starling-push").start();
    }
}
