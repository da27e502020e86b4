// Starts DynamoDB Local bound to 127.0.0.1 only: its own command line has no bind-address flag
// and listens on every interface. Run as a single source file (java 17):
//   java -cp "DynamoDBLocal.jar:DynamoDBLocal_lib/*" DynamoDbLocalLauncher.java -inMemory -port N
import java.lang.reflect.Field;

public class DynamoDbLocalLauncher {
    public static void main(String[] args) throws Exception {
        Object proxy = software.amazon.dynamodb.services.local.main.ServerRunner.createServerFromCommandLineArgs(args);
        Field f = proxy.getClass().getDeclaredField("server");
        f.setAccessible(true);
        org.eclipse.jetty.server.Server jetty = (org.eclipse.jetty.server.Server) f.get(proxy);
        for (org.eclipse.jetty.server.Connector c : jetty.getConnectors()) {
            if (c instanceof org.eclipse.jetty.server.ServerConnector sc) {
                sc.setHost("127.0.0.1");
            }
        }
        proxy.getClass().getMethod("start").invoke(proxy);
        proxy.getClass().getMethod("join").invoke(proxy);
    }
}
