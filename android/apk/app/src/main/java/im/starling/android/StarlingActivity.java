package im.starling.android;

import android.app.NativeActivity;
import android.os.Bundle;

import org.unifiedpush.android.connector.UnifiedPush;

/**
 * The app's one activity: NativeActivity runs the Rust UI (android_main). This subclass
 * only registers each account as a UnifiedPush instance when the app comes to the screen;
 * a distributor answers with the same endpoint as before, which costs nothing
 * (starling_core::Client::on_unified_push).
 */
public class StarlingActivity extends NativeActivity {
    static {
        System.loadLibrary("starling_android");
    }

    /** The accounts' JIDs, one per line (starling-android: receiver::instances). */
    private static native String nativeInstances(String filesDir);

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        // The secrets key before NativeActivity starts android_main, which opens the profile.
        SecretKeeper.install(this);
        super.onCreate(savedInstanceState);
    }

    @Override
    protected void onResume() {
        super.onResume();
        final String files = getFilesDir().getAbsolutePath();
        // The native side opens the profile database: not on the main thread.
        new Thread(() -> {
            final String accounts = nativeInstances(files);
            runOnUiThread(() -> registerForPush(accounts));
        }, "starling-push-register").start();
    }

    private void registerForPush(String accounts) {
        if (accounts == null || accounts.isEmpty()) {
            return;
        }
        UnifiedPush.tryUseCurrentOrDefaultDistributor(this, success -> {
            // Without a distributor Starling still works while it is open.
            if (success) {
                for (String jid : accounts.split("\n")) {
                    // The distributor may show the message to tell registrations apart.
                    UnifiedPush.register(this, jid, "Starling: " + jid, null);
                }
            }
            return kotlin.Unit.INSTANCE;
        });
    }
}
