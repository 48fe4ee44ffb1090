/* The AppleNeuralEngine.framework classes and selectors anetrain calls, named
 * once: apple_ane.c sends them and runtime.cpp checks at open that the framework still has each
 * one, so the two lists cannot drift apart. A C header, because apple_ane.c is C. */
#ifndef ANETRAIN_FRAMEWORK_NAMES_H
#define ANETRAIN_FRAMEWORK_NAMES_H

#define ANE_CLASS_DESCRIPTOR "_ANEInMemoryModelDescriptor"
#define ANE_CLASS_MODEL "_ANEInMemoryModel"
#define ANE_CLASS_REQUEST "_ANERequest"
#define ANE_CLASS_SURFACE_OBJECT "_ANEIOSurfaceObject"
#define ANE_CLASS_DEVICE_INFO "_ANEDeviceInfo" /* optional: only names the chip */

/* Class methods */
#define ANE_SEL_DESCRIPTOR_CREATE "modelWithMILText:weights:optionsPlist:"
#define ANE_SEL_MODEL_CREATE "inMemoryModelWithDescriptor:"
#define ANE_SEL_REQUEST_CREATE \
  "requestWithInputs:inputIndices:outputs:outputIndices:weightsBuffer:perfStats:procedureIndex:"
#define ANE_SEL_WRAP_SURFACE "objectWithIOSurface:"
#define ANE_SEL_DEVICE_SUBTYPE "aneSubType"

/* Instance methods of _ANEInMemoryModel */
#define ANE_SEL_MODEL_ID "hexStringIdentifier"
#define ANE_SEL_COMPILE "compileWithQoS:options:error:"
#define ANE_SEL_LOAD "loadWithQoS:options:error:"
#define ANE_SEL_EVALUATE "evaluateWithQoS:options:request:error:"
#define ANE_SEL_UNLOAD "unloadWithQoS:error:"

#endif
